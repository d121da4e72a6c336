"""The console's rules, without a network: passwords, sealed keys, sessions, forms, what
is due next, the development accounts, and the request handling (sign-in, CSRF, roles)."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.console import accounts, admin, due, forms, operator_pages, pages, passwords, sessions
from services.console.key_vault import KeyVault, VaultError, new_key
from services.console.memory_store import MemoryStore
from services.console.pipeline import Operations, queue_states
from services.console.web import Console, ConsoleSettings, local_path

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def test_a_password_verifies_only_against_its_own_hash():
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse battery")
    assert not passwords.verify(stored, "correct horse battery!")
    assert not passwords.verify(None, "correct horse battery")   # no such account: still refused
    assert not passwords.verify("not a hash", "x")
    with pytest.raises(ValueError):
        passwords.hash_password("short")


def test_a_sealed_key_opens_only_with_the_console_key_that_sealed_it():
    vault = KeyVault(new_key())
    sealed = vault.seal("amk_secret")
    assert "amk_secret" not in sealed and vault.open(sealed) == "amk_secret"
    with pytest.raises(VaultError):
        KeyVault(new_key()).open(sealed)
    for bad in ("", "   ", "not-a-fernet-key"):
        with pytest.raises(VaultError):
            KeyVault(bad)


def test_a_session_is_stored_by_the_hash_of_its_id_and_ends_when_it_expires():
    store = MemoryStore()
    session_id, session = sessions.start("alice", timedelta(hours=1), now=NOW)
    store.add_session(session)
    assert session_id not in store.sessions_by_hash and session.id_hash == sessions.id_hash(session_id)
    assert store.session(sessions.id_hash(session_id), now=NOW + timedelta(minutes=59)) == session
    assert store.session(sessions.id_hash(session_id), now=NOW + timedelta(hours=1)) is None
    assert store.sessions_by_hash == {}   # the expired session was deleted when met


def test_csrf_tokens_match_only_exactly():
    assert sessions.token_matches("abc", "abc")
    assert not sessions.token_matches("abc", "abd")
    assert not sessions.token_matches("abc", None) and not sessions.token_matches(None, None)
    assert not sessions.token_matches("", "")


def test_cookies_are_httponly_lax_and_secure_outside_development():
    assert sessions.cookie_options(True) == {"httponly": True, "samesite": "Lax", "secure": True, "path": "/"}
    assert sessions.cookie_options(False, timedelta(hours=2))["max_age"] == 7200


@pytest.mark.parametrize("target,expected", [
    ("/cases?status=TRIAGE", "/cases?status=TRIAGE"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
    ("/\\evil", "/"), ("", "/"), (None, "/"), ("cases", "/"),
    ("/cases\r\nSet-Cookie: x=1", "/")])
def test_only_local_paths_are_redirected_to(target, expected):
    assert local_path(target) == expected


def test_the_decision_form_names_each_field_at_fault_and_keeps_what_was_typed():
    values, errors = forms.decision({"decision": "maybe", "reason_code": "Not A Code", "reason": "  "})
    assert errors == {"decision": "error.decision_choose", "reason_code": "error.reason_code_format",
                      "reason": "error.reason_required"}
    assert values["reason_code"] == "Not A Code"
    values, errors = forms.decision({"decision": "suitable", "reason_code": "specialist_done", "reason": " ok "})
    assert errors == {} and values == {"decision": "suitable", "reason_code": "specialist_done", "reason": "ok"}


def test_case_filters_refuse_an_unknown_status_and_a_malformed_code():
    _, errors = forms.case_filters({"status": "LOST", "region": "South Wales", "agency": "dev-police"})
    assert errors == {"status": "error.status_unknown", "region": "error.code_format"}
    assert forms.case_filters({"status": "TRIAGE"})[1] == {}


def test_the_due_filter_takes_a_day_up_to_a_year_ahead_and_keeps_what_was_typed():
    today = datetime(2026, 12, 3).date()
    values, errors = forms.case_filters({"due_before": " 31/12/2026 ", "overdue": "1"}, today=today)
    assert errors == {"due_before": "error.date_format"}
    assert values["due_before"] == "31/12/2026" and values["overdue"] == "1"   # shown again as typed
    assert forms.case_filters({"due_before": "2026-02-30"}, today=today)[1] == {"due_before": "error.date_format"}
    assert forms.case_filters({"due_before": "2028-01-01"}, today=today)[1] == {"due_before": "error.due_before_range"}
    assert forms.case_filters({"due_before": "1999-12-31"}, today=today)[1] == {"due_before": "error.due_before_range"}
    values, errors = forms.case_filters({"due_before": "2026-12-31", "region": "gwent"}, today=today)
    assert errors == {}
    assert forms.case_query(values) == {"status": "", "region": "gwent", "agency": "", "due_before": "2026-12-31",
                                        "overdue": None}
    assert forms.case_query(forms.case_filters({"overdue": "on"})[0])["overdue"] == "true"


def test_what_is_due_next_is_the_earliest_open_thing():
    case = {"deadline": {"state": "met", "due_at": "2026-03-01T00:00:00+00:00"},
            "support_referral": {"state": "running", "due_at": "2026-03-09T00:00:00+00:00"},
            "sessions": [{"status": "scheduled", "starts_at": "2026-03-05T10:00:00+00:00", "process_type": "direct"},
                         {"status": "cancelled", "starts_at": "2026-03-03T10:00:00+00:00"}],
            "agreement": {"items": [{"status": "open", "due_on": "2026-04-01", "kind": "apology"},
                                    {"status": "completed", "due_on": "2026-03-02", "kind": "reparation"}]}}
    assert [key for _, key, _ in due.upcoming(case)] == ["due.session", "due.support_referral", "due.agreement_item"]
    assert due.next_due(case)[0] == "2026-03-05T10:00:00+00:00"
    assert due.next_due({}) is None


def test_what_is_due_next_on_a_listed_case_is_the_listings_next_due():
    listed = {"case_id": "c-1", "next_due": {"at": "2026-03-09T00:00:00+00:00", "kind": "support_referral",
                                             "overdue": True}}
    assert due.listed(listed) == ("2026-03-09T00:00:00+00:00", "due.support_referral", True)
    assert due.listed({"case_id": "c-2", "next_due": None}) is None
    assert due.listed({**listed, "next_due": {**listed["next_due"], "kind": "new_kind"}})[1] == "due.other"


def test_every_account_acts_through_the_apis_with_a_key_an_operator_s_too():
    assert accounts.check("alice", "coordinator", None, True) is None
    assert "API key" in accounts.check("alice", "coordinator", None, False)
    assert accounts.check("olu", "operator", None, True) is None
    assert "API key" in accounts.check("olu", "operator", None, False)
    assert "facilitator id" in accounts.check("fac", "facilitator", None, True)
    assert "username" in accounts.check("Alice Smith", "auditor", None, True)


def test_development_accounts_keep_their_passwords_and_take_a_changed_key():
    store, vault = MemoryStore(), KeyVault(new_key())
    keys = {"coordinator": "amk_c1", "facilitator": "amk_f1", "auditor": "amk_a1", "operator": "amk_o1"}
    first = admin.provision_dev(store, vault, keys, {}, "fac-0001")
    assert set(first) == {"coordinator", "facilitator", "auditor", "operator"}
    assert store.account("dev-facilitator").subject == "fac-0001"
    assert vault.open(store.account("dev-operator").sealed_key) == "amk_o1"
    again = admin.provision_dev(store, vault, {**keys, "coordinator": "amk_c2"}, json.loads(json.dumps(first)),
                                "fac-0001")
    assert again == first
    assert vault.open(store.account("dev-coordinator").sealed_key) == "amk_c2"
    # a lost sign-ins file: new passwords, which then work
    fresh = admin.provision_dev(store, vault, keys, {}, "fac-0001")
    assert fresh["auditor"]["password"] != first["auditor"]["password"]
    assert passwords.verify(store.account("dev-auditor").password_hash, fresh["auditor"]["password"])


def test_an_operator_account_made_before_operators_had_keys_gets_one():
    store, vault = MemoryStore(), KeyVault(new_key())
    keys = {"coordinator": "amk_c1", "facilitator": "amk_f1", "auditor": "amk_a1", "operator": "amk_o1"}
    first = admin.provision_dev(store, vault, keys, {}, "fac-0001")
    store.set_sealed_key("dev-operator", None)   # as an operator account of before was: no key
    again = admin.provision_dev(store, vault, keys, first, "fac-0001")
    assert again == first   # the same password
    assert vault.open(store.account("dev-operator").sealed_key) == "amk_o1"
    with pytest.raises(SystemExit, match="operator"):   # a key file of before, with no operator key
        admin.provision_dev(store, vault, {r: k for r, k in keys.items() if r != "operator"}, first, "fac-0001")


def test_queue_states_keep_the_platform_s_queues_with_the_oldest_message_s_age():
    raw = [{"name": "matching.assess", "messages": 3, "messages_ready": 2, "messages_unacknowledged": 1,
            "consumers": 1, "head_message_timestamp": 1000},
           {"name": "matching.dead-letters", "messages": 1},
           {"name": "matching.assess.delay.500ms", "messages": 0},
           {"name": "someone-elses-queue", "messages": 9}]
    states = queue_states(raw, now=1042.0)
    assert [s.name for s in states] == ["matching.assess", "matching.assess.delay.500ms", "matching.dead-letters"]
    assert states[0].oldest_age_seconds == 42.0 and states[2].oldest_age_seconds is None
    assert states[0].wait == ("pipeline.age", 42.0)


@pytest.mark.parametrize("raw,wait", [
    ({"messages": 0}, ("pipeline.none_waiting", None)),
    ({"messages": 40, "messages_ready": 30, "consumers": 2, "message_stats": {"ack_details": {"rate": 12.0}}},
     ("pipeline.wait_estimate", 2.5)),
    ({"messages": 4, "messages_ready": 0, "messages_unacknowledged": 4, "consumers": 1}, ("pipeline.being_handled", None)),
    ({"messages": 7, "messages_ready": 7, "consumers": 0}, ("pipeline.no_consumer", None)),
    ({"messages": 7, "messages_ready": 7, "consumers": 1, "message_stats": {"ack_details": {"rate": 0.0}}},
     ("pipeline.not_moving", None)),
])
def test_a_quorum_queue_without_a_head_timestamp_shows_its_wait_at_the_current_rate(raw, wait):
    (state,) = queue_states([{"name": "matching.assess", **raw}], now=1042.0)
    assert state.oldest_age_seconds is None and state.wait == wait


def test_held_retries_and_dead_letters_are_not_called_stuck_for_having_no_consumer():
    held, dead = queue_states([{"name": "matching.assess.delay.500ms", "messages": 2, "messages_ready": 2},
                               {"name": "matching.dead-letters", "messages": 1, "messages_ready": 1}])
    assert held.wait == ("pipeline.held_for_retry", None) and dead.wait == ("pipeline.for_an_operator", None)


# --- the request handling ---------------------------------------------------------------

def make_console(urls=None, api_session=None):
    """A console on the in-memory store with a coordinator and an operator; its calls to the
    services (at `urls`) go through `api_session`, when given."""
    store, vault = MemoryStore(), KeyVault(new_key())
    store.add_account(accounts.new_account("cora", "coordinator", passwords.hash_password("a long password 1"),
                                           sealed_key=vault.seal("amk_x")))
    store.add_account(accounts.new_account("olu", "operator", passwords.hash_password("a long password 2"),
                                           sealed_key=vault.seal("amk_o")))
    return Console(store, vault, urls or {}, Operations("", ""),
                   ConsoleSettings(secure_cookies=True, sign_in_failures_per_minute=3, sign_in_failures_burst=3),
                   api_session=api_session)


def request(method, path, form=None, cookies=None):
    builder = EnvironBuilder(method=method, path=path, data=form, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    environ = builder.get_environ()
    if cookies:
        environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return Request(environ)


def cookies_of(response):
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def sign_in(console, username, password):
    form_page = console.handle(request("GET", "/sign-in"), pages.sign_in_form)
    token = cookies_of(form_page)[sessions.SIGN_IN_COOKIE].split("=", 1)[1].split(";")[0]
    return console.handle(request("POST", "/sign-in", {"username": username, "password": password,
                                                       sessions.CSRF_FIELD: token},
                                  {sessions.SIGN_IN_COOKIE: token}), pages.sign_in)


def session_cookie(response):
    return cookies_of(response)[sessions.COOKIE].split("=", 1)[1].split(";")[0]


def test_signing_in_sets_a_secure_httponly_session_cookie_and_goes_to_the_role_s_start_page():
    console = make_console()
    answer = sign_in(console, "olu", "a long password 2")
    assert answer.status_code == 303 and answer.headers["Location"] == "/operator"
    cookie = cookies_of(answer)[sessions.COOKIE]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    assert len(console.store.sessions_by_hash) == 1


def test_a_wrong_password_is_refused_and_repeated_failures_are_throttled():
    console = make_console()
    statuses = [sign_in(console, "cora", "wrong password here").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # the right password too, while throttled: the guesser learns nothing
    assert sign_in(console, "cora", "a long password 1").status_code == 429


def test_a_sign_in_without_its_form_token_is_refused():
    console = make_console()
    answer = console.handle(request("POST", "/sign-in", {"username": "cora", "password": "a long password 1"}),
                            pages.sign_in)
    assert answer.status_code == 403 and console.store.sessions_by_hash == {}


def test_a_post_without_the_session_s_csrf_token_is_refused_with_a_clear_page():
    console = make_console()
    cookie = session_cookie(sign_in(console, "olu", "a long password 2"))
    answer = console.handle(request("POST", "/sign-out", {sessions.CSRF_FIELD: "forged"}, {sessions.COOKIE: cookie}),
                            pages.sign_out, roles=("operator",))
    assert answer.status_code == 403 and b"did not come from the console" in answer.data
    assert len(console.store.sessions_by_hash) == 1   # still signed in: nothing was done
    token = next(iter(console.store.sessions_by_hash.values())).csrf_token
    signed_out = console.handle(request("POST", "/sign-out", {sessions.CSRF_FIELD: token}, {sessions.COOKIE: cookie}),
                                pages.sign_out, roles=("operator",))
    assert signed_out.status_code == 303 and console.store.sessions_by_hash == {}


def test_a_role_is_refused_a_page_it_may_not_open_and_nobody_signed_in_is_sent_to_sign_in():
    console = make_console()
    cookie = session_cookie(sign_in(console, "cora", "a long password 1"))
    refused = console.handle(request("GET", "/operator", cookies={sessions.COOKIE: cookie}), operator_pages.pipeline,
                             roles=("operator",))
    assert refused.status_code == 403 and b"Your role may not open this page" in refused.data
    anonymous = console.handle(request("GET", "/operator"), operator_pages.pipeline, roles=("operator",))
    assert anonymous.status_code == 303 and anonymous.headers["Location"] == "/sign-in?next=/operator"


def test_pages_are_in_welsh_when_asked():
    console = make_console()
    page = console.handle(request("GET", "/sign-in", cookies={sessions.LANGUAGE_COOKIE: "cy"}), pages.sign_in_form)
    assert b'<html lang="cy">' in page.data and b"Mewngofnodi" in page.data


# --- contrast (WCAG 2.2 AA), from the stylesheet's own colours -------------------------------

def _luminance(hex_colour):
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first, second):
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_stylesheet_s_colours_meet_wcag_aa_contrast():
    import os
    import re
    from services.console import web
    css = open(os.path.join(os.path.dirname(web.TEMPLATES), "static", "console.css")).read()
    colour = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-fA-F]{6})", css))
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)   # the formula, checked
    for text in ("ink", "muted", "link", "error", "accent"):      # text on the page and on the header band
        for ground in ("paper", "band"):
            assert contrast(colour[text], colour[ground]) >= 4.5, (text, ground)
    assert contrast("#ffffff", colour["accent"]) >= 4.5             # a button's label
    assert contrast(colour["ink"], colour["focus"]) >= 4.5          # a focused link: dark text on yellow
    assert contrast(colour["ink"], colour["paper"]) >= 3 and contrast(colour["focus"], colour["ink"]) >= 3  # the ring
