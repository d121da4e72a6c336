"""Contact details, asked for at send time and never kept (CONTRACTS.md).

Participants' and referrers' details come from `referrals.get_contact`, facilitators'
from `matching.get_facilitator_contact`, each for a stated purpose; coordinating teams'
from notifications' own configuration (coordinators.py), which raises NoCoordinatingTeam
for a region without one; agencies' contacts likewise (agencies.py, NoAgencyContact). The answer is
`{"granted", "reason", "details"}`; refusals carry the holder's reason code.
"""
import eventlet

from services.notifications.audience import AGENCIES, COORDINATORS, MATCHING

REQUESTER = "notifications"


class ContactLookupFailed(RuntimeError):
    """The holder of the details did not answer; the event is retried later."""


class Contacts:
    def __init__(self, referrals, matching, timeout=10.0, coordinators=None, agencies=None):
        self.referrals = referrals
        self.matching = matching
        self.timeout = timeout
        self.coordinators = coordinators
        self.agencies = agencies

    def lookup(self, notice):
        if notice.holder == COORDINATORS:
            return self.coordinators.lookup(notice.recipient_id)
        if notice.holder == AGENCIES:
            return self.agencies.lookup(notice.recipient_id)
        if notice.holder == MATCHING:
            method = self.matching.get_facilitator_contact
        else:
            method = self.referrals.get_contact
        # a session notice names its session to referrals (matching's lookup takes no such thing)
        about = {"session_id": notice.session_id} if notice.session_id and notice.holder != MATCHING else {}
        try:
            with eventlet.Timeout(self.timeout):
                answer = method.call_async(notice.recipient_id, notice.purpose, REQUESTER, **about).result()
        except eventlet.Timeout:
            raise ContactLookupFailed(f"{notice.holder} did not answer a contact lookup in {self.timeout:g}s")
        except Exception as exc:  # the holder is down, or does not serve this lookup yet
            # The error's text may quote what was asked; keep only its type.
            raise ContactLookupFailed(f"{notice.holder} contact lookup failed: {type(exc).__name__}")
        if not isinstance(answer, dict) or "granted" not in answer:
            raise ContactLookupFailed(f"{notice.holder} gave a contact answer of the wrong shape")
        return answer
