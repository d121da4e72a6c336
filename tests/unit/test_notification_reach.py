"""Suppression and deferral: whether, how and when a person may be reached (pure)."""
from datetime import datetime, timezone

import pytest

from services.notifications import reach

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)  # a Thursday, GMT
BOTH = ("email", "sms")


def granted(**details):
    base = {"name": "Sam", "email": "sam@example.test", "phone": "+447700900001", "language": "en",
            "preferred_channels": ["email", "sms"], "safe_contact_windows": [], "contact_safe": True}
    base.update(details)
    return {"granted": True, "reason": "granted", "details": base}


@pytest.mark.parametrize("reason", ["consent_missing", "consent_withdrawn", "contact_unsafe", "personal_data_erased",
                                    "unknown_party", "unknown_purpose", "no_contact_details"])
def test_a_refused_lookup_is_suppressed_with_the_holders_reason(reason):
    decision = reach.decide({"granted": False, "reason": reason, "details": {}}, "harmed", BOTH, NOW)
    assert (decision.action, decision.reason, decision.address) == ("suppress", reason, None)


def test_a_safeguarding_flag_suppresses_even_a_granted_lookup():
    decision = reach.decide(granted(contact_safe=False), "harmed", BOTH, NOW)
    assert (decision.action, decision.reason) == ("suppress", "contact_unsafe")


def test_the_first_preferred_channel_is_used():
    decision = reach.decide(granted(preferred_channels=["sms", "email"]), "harmer", BOTH, NOW)
    assert (decision.action, decision.channel, decision.address) == ("send", "sms", "+447700900001")


def test_a_channel_the_preferences_do_not_name_is_never_used():
    decision = reach.decide(granted(preferred_channels=["letter"]), "harmed", BOTH, NOW)
    assert (decision.action, decision.reason) == ("suppress", "channel_not_preferred")
    decision = reach.decide(granted(preferred_channels=["sms"]), "harmed", ("email",), NOW)
    assert (decision.action, decision.reason) == ("suppress", "channel_not_preferred")


def test_a_preferred_channel_without_an_address_falls_to_the_next_preference():
    decision = reach.decide(granted(preferred_channels=["sms", "email"], phone=None), "harmed", BOTH, NOW)
    assert (decision.channel, decision.address) == ("email", "sam@example.test")
    decision = reach.decide(granted(preferred_channels=["sms"], phone=None), "harmed", BOTH, NOW)
    assert (decision.action, decision.reason) == ("suppress", "no_contact_details")


def test_staff_are_emailed_and_participants_without_preferences_get_email_then_sms():
    staff = reach.decide({"granted": True, "reason": "granted", "details": {"name": "R", "email": "r@x.test"}},
                         "referrer", BOTH, NOW)
    assert (staff.action, staff.channel, staff.language) == ("send", "email", "en")
    participant = reach.decide(granted(preferred_channels=[], email=None), "harmed", BOTH, NOW)
    assert participant.channel == "sms"


def test_a_closed_window_defers_until_it_opens():
    evenings = [{"days": ["thu"], "start": "18:00", "end": "20:00"}]
    decision = reach.decide(granted(safe_contact_windows=evenings), "harmed", BOTH, NOW)
    assert decision.action == "defer"
    assert decision.until == datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)
    assert decision.channel == "email" and decision.address is None


def test_an_open_window_sends_now():
    mornings = [{"days": ["thu"], "start": "11:00", "end": "13:00"}]
    assert reach.decide(granted(safe_contact_windows=mornings), "harmed", BOTH, NOW).action == "send"


def test_windows_that_never_open_suppress_rather_than_guess():
    decision = reach.decide(granted(safe_contact_windows=[{"days": [], "start": "09:00", "end": "10:00"}]),
                            "harmed", BOTH, NOW)
    assert (decision.action, decision.reason) == ("suppress", "no_safe_contact_window")


def test_the_language_is_the_persons_own_else_the_fallback():
    assert reach.decide(granted(language="cy"), "harmed", BOTH, NOW).language == "cy"
    assert reach.decide(granted(language="fr"), "harmed", BOTH, NOW, fallback_language="cy").language == "cy"


def test_a_delivery_keyed_to_a_channel_keeps_it_or_is_suppressed():
    assert reach.decide(granted(preferred_channels=["email", "sms"]), "harmed", BOTH, NOW, channel="sms").channel == "sms"
    decision = reach.decide(granted(preferred_channels=["email"]), "harmed", BOTH, NOW, channel="sms")
    assert (decision.action, decision.reason) == ("suppress", "channel_not_preferred")
