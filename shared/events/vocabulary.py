"""The controlled vocabularies every service and every event schema shares."""
from marshmallow import validate

ROLES = ("harmed", "harmer", "supporter", "appropriate_adult", "interpreter")
LANGUAGES = ("en", "cy")
AGE_BANDS = ("under_18", "18_24", "25_34", "35_49", "50_64", "65_plus", "unknown")
CJS_STAGES = ("pre_charge", "out_of_court_disposal", "pre_sentence", "community_sentence", "custody")
OFFENCE_CATEGORIES = (
    "violence_against_the_person",
    "sexual_offence",
    "robbery",
    "theft",
    "burglary",
    "criminal_damage",
    "arson",
    "public_order",
    "hate_crime",
    "fraud",
    "drug_offence",
    "motoring",
    "antisocial_behaviour",
    "other",
)
FLAGS = (
    "domestic_abuse",
    "sexual_offence",
    "hate_crime",
    "gender_based_violence",
    "youth",
    "enhanced_rights_victim",
)
DECISIONS = ("suitable", "unsuitable", "needs_review")
RISK_LEVELS = ("low", "medium", "high")
FACILITATOR_LEVELS = ("foundation", "intermediate", "advanced")
PROCESS_TYPES = ("direct_conference", "shuttle", "letter_exchange", "group_conference", "youth_panel")
CHANNELS = ("email", "sms", "letter")
RECIPIENT_ROLES = ("referrer", "facilitator") + ROLES


# field validators shared by the event schemas
ID = validate.Length(min=1, max=100)
CODE = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$")
