"""The facilitator registry (coordinators edit it, auditors read it) and the cases waiting for
staff, through matching's API with the signed-in person's key."""
from datetime import datetime, timezone

from services.console import forms
from services.console.apis import Refused
from services.console.web import Redirect, page_offset


REGISTRY_PAGE = 100   # facilitators a page of the registry shows


def facilitator_list(visit):
    values, errors = forms.registry_filters(visit.args)
    offset = page_offset(visit.args.get("offset"))
    found = []
    if not errors:
        found = visit.apis().get("matching", "/v1/facilitators", limit=REGISTRY_PAGE, offset=offset,
                                 **values)["facilitators"]
    return visit.render("facilitators.html", status=400 if errors else 200, values=values, errors=errors,
                        facilitators=found, offset=offset,
                        next_offset=offset + REGISTRY_PAGE if len(found) == REGISTRY_PAGE else None,
                        done=visit.args.get("done"), done_id=visit.args.get("id"))


def new_facilitator(visit, values=None, errors=None, status=200, refused_key=None):
    values = values or {"language": "en", "languages": ["en"], "endorsements": [], "capacity": "3"}
    return _facilitator_form(visit, None, values, errors, status, refused_key)


def create_facilitator(visit):
    def send(body):
        visit.apis().post("matching", "/v1/facilitators", body)
        return body["facilitator_id"]
    return _submit_facilitator(visit, True, send, lambda *shown: new_facilitator(visit, *shown), "created")


def facilitator_page(visit, facilitator_id, values=None, errors=None, status=200, refused_key=None):
    record = visit.apis().get("matching", f"/v1/facilitators/{facilitator_id}")
    return _facilitator_form(visit, record, values or forms.facilitator_values(record), errors, status, refused_key)


def change_facilitator(visit, facilitator_id):
    def send(body):
        visit.apis().patch("matching", f"/v1/facilitators/{facilitator_id}", body)
        return facilitator_id
    return _submit_facilitator(visit, False, send, lambda *shown: facilitator_page(visit, facilitator_id, *shown),
                               "changed")


def confirm_deactivation(visit, facilitator_id):
    record = visit.apis().get("matching", f"/v1/facilitators/{facilitator_id}")
    return visit.render("facilitator_deactivate.html", record=record)


def deactivate_facilitator(visit, facilitator_id):
    visit.apis().post("matching", f"/v1/facilitators/{facilitator_id}/deactivate")
    raise Redirect(f"/facilitators?done=deactivated&id={facilitator_id}")


def _facilitator_form(visit, record, values, errors, status, refused_key):
    return visit.render("facilitator_form.html", status=status, record=record, values=values, errors=errors or {},
                        refused_key=refused_key, editable=visit.account.role == "coordinator",
                        levels=forms.LEVELS, spoken=forms.SPOKEN, endorsements=forms.ENDORSEMENTS)


def _submit_facilitator(visit, creating, send, again, done):
    """Check the form, `send` the record (it returns the facilitator's id), and go to the list;
    or show the form `again(values, errors, status, refused_key)` with each fault beside its field."""
    values, errors, body = forms.facilitator(visit.form, creating)
    if errors:
        return again(values, errors, 400, None)
    try:
        facilitator_id = send(body)
    except Refused as refused:
        if refused.status == 409:
            return again(values, {"facilitator_id": "error.facilitator_taken"}, 409, None)
        if refused.status == 403:
            return again(values, {"regions": "error.regions_not_yours"}, 403, None)
        if refused.status == 400:
            named, refused_key = _api_errors(refused)
            return again(values, named, 400, refused_key)
        raise
    raise Redirect(f"/facilitators?done={done}&id={facilitator_id}")


def _api_errors(refused):
    """The fields of a 400 from matching, each beside the same field of the form (any other
    fault said above the form)."""
    named = {name: "error.api_field" for name in refused.fields if name in forms.FACILITATOR_FIELDS}
    return named, (None if named else "error.bad_request")


def waiting_list(visit):
    offset = page_offset(visit.args.get("offset"))
    page = visit.apis().get("matching", "/v1/waiting", offset=offset)
    now = datetime.now(timezone.utc)
    cases = [dict(case, waited=_waited(case.get("waiting_since"), now)) for case in page["cases"]]
    return visit.render("waiting.html", cases=cases, total=page["total"], next_offset=page.get("next_offset"))


def _waited(since, now):
    """How long a case has waited, as a catalogue key and its fields (None: it is being offered now)."""
    if not since:
        return None
    hours = max(0, int((now - datetime.fromisoformat(since)).total_seconds() // 3600))
    if hours < 1:
        return "waiting.under_an_hour", {}
    return "waiting.days_hours", {"days": hours // 24, "hours": hours % 24}
