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
# what an assessment was made on (case.assessed `basis`)
ASSESSMENT_BASES = ("referral", "review", "consent")
RISK_LEVELS = ("low", "medium", "high")
FACILITATOR_LEVELS = ("foundation", "intermediate", "advanced")
PROCESS_TYPES = ("direct_conference", "shuttle", "letter_exchange", "group_conference", "youth_panel")
CHANNELS = ("email", "sms", "letter")
# `coordinator`: the coordinating team of a case's region (a team mailbox, not a person)
RECIPIENT_ROLES = ("referrer", "facilitator") + ROLES + ("coordinator",)
# The Victims' Code clocks a case keeps (services/referrals/deadlines.py)
DEADLINES = ("victim_told_about_rj", "support_referral")
# What a case's clocks are measured from: the day the victim reported the crime, or (when
# the referral did not give that date) the day the referral was received; cases stored
# before the basis was recorded say `not_recorded`.
CLOCK_BASES = ("crime_reported", "referral_received", "not_recorded")
# A referral of the harmed person to a support service: made, or declined by them
SUPPORT_OUTCOMES = ("referred", "declined")


# field validators shared by the event schemas
ID = validate.Length(min=1, max=100)
CODE_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
CODE = validate.Regexp(CODE_PATTERN)
# a person's pseudonymous subject id (an API key's holder, a facilitator id)
SUBJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
SUBJECT = validate.Regexp(SUBJECT_PATTERN)

# The case lifecycle (services/referrals/lifecycle.py); ON_HOLD and CLOSED can be entered from several states.
CASE_STATUSES = (
    "RECEIVED", "TRIAGE", "CONTACTING", "ASSESSMENT", "ALLOCATED", "PREPARATION", "INTERVENTION",
    "AGREEMENT_MONITORING", "FOLLOW_UP", "CLOSED", "ON_HOLD",
)
CLOSURE_REASONS = (
    "completed_direct", "completed_indirect", "partial", "harmed_declined", "harmer_declined", "no_contact",
    "not_suitable", "safety_stop", "consent_withdrawn", "referred_to_specialist", "terminated_reoffence",
    "terminated_noncompliance",
)
# participation: taking part; share_item: a given piece of information with a given party;
# share_outcome_with_court: the outcome with a prosecutor or court.
CONSENT_SCOPES = ("participation", "share_item", "share_outcome_with_court")
OUTCOMES = ("agreement_completed", "agreement_not_completed")
