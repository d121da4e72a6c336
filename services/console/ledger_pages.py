"""The ledger page (operators, with their own `operator` key: the signed head, a verification,
a case's bundle by reference) and a case's bundle from its page (coordinators, auditors)."""
import logging

from werkzeug.wrappers import Response

from services.console import forms
from services.console import ledger as ledger_view
from services.console.apis import Refused
from services.console.web import PageError

log = logging.getLogger(__name__)


def ledger(visit, values=None, errors=None, status=200, verification=None):
    head = ledger_view.signed_head(visit.apis())
    return visit.render("ledger.html", status=status, head=head, verification=verification,
                        values=values or {}, errors=errors or {})


def verify_ledger(visit):
    verification = ledger_view.verify(visit.apis())
    log.info("ledger verified from the console", extra={"fields": {
        "valid": verification.valid, "first_bad_seq": verification.first_bad_seq}})
    return ledger(visit, verification=verification)


def ledger_bundle(visit):
    """The operator's form: a case's bundle by its reference. A case outside the key's regions
    is refused by records as if it did not exist, and shown here the same way."""
    values, errors = forms.case_reference(visit.args)
    if errors:
        return ledger(visit, values, errors, status=400)
    try:
        return _bundle_download(visit, values["case"])
    except Refused as refused:
        if refused.status != 404:
            raise
        return ledger(visit, values, {"case_id": "error.case_not_found_or_not_yours"}, status=404)


def case_bundle(visit, case_id):
    """A case's bundle, from its page (for the people who may see the case)."""
    values, errors = forms.case_reference({"case_id": case_id})
    if errors:
        raise PageError(404, "error.not_found")
    return _bundle_download(visit, values["case"])


def _bundle_download(visit, case_id):
    name, body = ledger_view.bundle_file(visit.apis().get("records", f"/v1/cases/{case_id}/bundle"), case_id)
    response = Response(body, content_type="application/json; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return visit.console.finish(response, visit.cookies)
