"""Words for the platform's codes (and dates), in English and Welsh, for the templates.

The Welsh wording is the team's own and should be checked by a Welsh-language
officer before going live (see docs/notifications.md).
"""
from datetime import date
from zoneinfo import ZoneInfo

LABELS = {
    "offence_category": {
        "violence_against_the_person": ("violence against the person", "trais yn erbyn y person"),
        "sexual_offence": ("sexual offence", "trosedd rywiol"),
        "robbery": ("robbery", "ysbeilio"),
        "theft": ("theft", "lladrad"),
        "burglary": ("burglary", "byrgleriaeth"),
        "criminal_damage": ("criminal damage", "difrod troseddol"),
        "arson": ("arson", "llosgi bwriadol"),
        "public_order": ("public order", "trefn gyhoeddus"),
        "hate_crime": ("hate crime", "trosedd casineb"),
        "fraud": ("fraud", "twyll"),
        "drug_offence": ("drug offence", "trosedd cyffuriau"),
        "motoring": ("motoring", "moduro"),
        "antisocial_behaviour": ("antisocial behaviour", "ymddygiad gwrthgymdeithasol"),
        "other": ("other", "arall"),
    },
    "cjs_stage": {
        "pre_charge": ("before charge", "cyn cyhuddo"),
        "out_of_court_disposal": ("out-of-court disposal", "gwarediad y tu allan i'r llys"),
        "pre_sentence": ("before sentence", "cyn dedfrydu"),
        "community_sentence": ("community sentence", "dedfryd gymunedol"),
        "custody": ("custody", "yn y ddalfa"),
    },
    "flag": {
        "domestic_abuse": ("domestic abuse", "cam-drin domestig"),
        "sexual_offence": ("sexual offence", "trosedd rywiol"),
        "hate_crime": ("hate crime", "trosedd casineb"),
        "gender_based_violence": ("gender-based violence", "trais ar sail rhywedd"),
        "youth": ("youth", "ieuenctid"),
        "enhanced_rights_victim": ("victim with enhanced rights", "dioddefwr â hawliau uwch"),
    },
    "role": {
        "harmed": ("person harmed", "y person a niweidiwyd"),
        "harmer": ("person responsible", "y person a achosodd y niwed"),
        "supporter": ("supporter", "cefnogwr"),
        "appropriate_adult": ("appropriate adult", "oedolyn priodol"),
        "interpreter": ("interpreter", "cyfieithydd"),
    },
    "age_band": {
        "under_18": ("under 18", "dan 18"),
        "18_24": ("18 to 24", "18 i 24"),
        "25_34": ("25 to 34", "25 i 34"),
        "35_49": ("35 to 49", "35 i 49"),
        "50_64": ("50 to 64", "50 i 64"),
        "65_plus": ("65 or over", "65 neu hŷn"),
        "unknown": ("age not known", "oedran anhysbys"),
    },
    "language": {
        "en": ("English", "Saesneg"),
        "cy": ("Welsh", "Cymraeg"),
    },
    "decision": {
        "suitable": ("suitable", "addas"),
        "unsuitable": ("not suitable", "anaddas"),
        "needs_review": ("to be reviewed by a coordinator", "i'w adolygu gan gydlynydd"),
    },
    "risk_level": {
        "low": ("low", "isel"),
        "medium": ("medium", "canolig"),
        "high": ("high", "uchel"),
    },
    "process_type": {
        "direct_conference": ("face-to-face meeting", "cyfarfod wyneb yn wyneb"),
        "shuttle": ("indirect (shuttle) communication", "cyfathrebu anuniongyrchol (gwennol)"),
        "letter_exchange": ("exchange of letters", "cyfnewid llythyrau"),
        "group_conference": ("community or family group conference", "cynhadledd grŵp cymunedol neu deuluol"),
        "youth_panel": ("youth offender panel", "panel troseddwyr ifanc"),
    },
    "facilitator_role": {
        "lead": ("lead facilitator", "hwylusydd arweiniol"),
        "co_facilitator": ("co-facilitator", "cyd-hwylusydd"),
    },
    # the Victims' Code clocks (services/referrals/deadlines.py)
    "deadline": {
        "victim_told_about_rj": ("telling the person harmed about restorative justice",
                                 "dweud wrth y person a niweidiwyd am gyfiawnder adferol"),
        "support_referral": ("referring the person harmed to support services",
                             "atgyfeirio'r person a niweidiwyd at wasanaethau cymorth"),
    },
    # sessions (services/notifications/sessions.py)
    "venue_kind": {
        "rj_service": ("the restorative justice service", "y gwasanaeth cyfiawnder adferol"),
        "community": ("a community venue", "lleoliad cymunedol"),
        "prison": ("a prison", "carchar"),
        "remote": ("online", "ar-lein"),
        "neutral": ("a neutral venue", "lleoliad niwtral"),
    },
    # after the intervention: what an agreement holds, how a case closes, its outcome, surveys
    "item_kind": {
        "apology": ("an apology", "ymddiheuriad"),
        "explanation": ("an explanation", "esboniad"),
        "reparation": ("reparation", "gwneud iawn"),
        "restitution": ("a payment (restitution)", "taliad (adferiad)"),
        "work_for_harmed": ("work for the person harmed", "gwaith i'r person a niweidiwyd"),
        "community_work": ("work for the community", "gwaith i'r gymuned"),
        "agreed_behaviour": ("agreed behaviour", "ymddygiad y cytunwyd arno"),
        "support_referral": ("going to a support service or programme", "mynd at wasanaeth cymorth neu raglen"),
    },
    "closure_reason": {
        "completed_direct": ("completed (face to face)", "wedi'i gwblhau (wyneb yn wyneb)"),
        "completed_indirect": ("completed (indirectly)", "wedi'i gwblhau (yn anuniongyrchol)"),
        "partial": ("partly completed", "wedi'i gwblhau'n rhannol"),
        "harmed_declined": ("the person harmed chose not to take part",
                            "dewisodd y person a niweidiwyd beidio â chymryd rhan"),
        "harmer_declined": ("the person responsible chose not to take part",
                            "dewisodd y person a achosodd y niwed beidio â chymryd rhan"),
        "no_contact": ("it was not possible to make contact", "nid oedd yn bosibl cysylltu"),
        "not_suitable": ("not suitable for restorative justice", "ddim yn addas ar gyfer cyfiawnder adferol"),
        "safety_stop": ("stopped for safety reasons", "wedi'i atal am resymau diogelwch"),
        "consent_withdrawn": ("consent was withdrawn", "tynnwyd caniatâd yn ôl"),
        "referred_to_specialist": ("referred to a specialist service", "wedi'i atgyfeirio at wasanaeth arbenigol"),
        "terminated_reoffence": ("ended after a further offence", "wedi dod i ben ar ôl trosedd arall"),
        "terminated_noncompliance": ("ended because the agreement was not kept",
                                     "wedi dod i ben am na chadwyd at y cytundeb"),
    },
    "outcome": {
        "agreement_completed": ("the agreement was completed", "cwblhawyd y cytundeb"),
        "agreement_not_completed": ("the agreement was not completed", "ni chwblhawyd y cytundeb"),
    },
    "survey_stage": {
        "closure": ("at the end of the case", "ar ddiwedd yr achos"),
        "follow_up": ("at follow-up, some months on", "wrth ddilyn i fyny, rai misoedd yn ddiweddarach"),
    },
}

MONTHS = (
    ("January", "Ionawr"), ("February", "Chwefror"), ("March", "Mawrth"), ("April", "Ebrill"), ("May", "Mai"),
    ("June", "Mehefin"), ("July", "Gorffennaf"), ("August", "Awst"), ("September", "Medi"), ("October", "Hydref"),
    ("November", "Tachwedd"), ("December", "Rhagfyr"),
)
WEEKDAYS = (
    ("Monday", "Dydd Llun"), ("Tuesday", "Dydd Mawrth"), ("Wednesday", "Dydd Mercher"), ("Thursday", "Dydd Iau"),
    ("Friday", "Dydd Gwener"), ("Saturday", "Dydd Sadwrn"), ("Sunday", "Dydd Sul"),
)
LONDON = ZoneInfo("Europe/London")

INDEX = {"en": 0, "cy": 1}


def day_words(language):
    """`day(iso_date)` for the templates: "Monday 30 November 2026", "Dydd Llun 30 Tachwedd 2026"."""
    index = INDEX[language]

    def day(iso):
        value = date.fromisoformat(iso)
        return f"{WEEKDAYS[value.weekday()][index]} {value.day} {MONTHS[value.month - 1][index]} {value.year}"

    return day


def sayer(language):
    """`say(kind, code)` for the templates: the words for a code, or the code made
    readable when it has none (free codes such as access needs)."""
    index = INDEX[language]

    def say(kind, code):
        words = LABELS.get(kind, {}).get(code)
        return words[index] if words else str(code).replace("_", " ")

    return say
