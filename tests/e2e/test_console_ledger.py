"""The operators' ledger page in a real browser (headless Chromium, Debian's `chromium`,
driven by Selenium through `chromium-driver`), against the real services as processes.

Referrals go through; the operator sees records' signed head grow, each head matching
records' own consistency proof; verifies the ledger; downloads the bundle of a case in
their key's region (a real browser download), which the test checks against records' own
inclusion proofs and timeline; a malformed reference and a case outside the key's region
are each named beside the field, the typed value kept, the second exactly as an unknown
case; a coordinator may not open the page, and downloads a bundle from a case's page.
Screenshots go to var/artifacts/screenshots/<screen>.png.
"""
import json
import os
import uuid

import requests
from selenium.webdriver.common.by import By

from services.records import bundle as bundles
from services.records.checkpoints import Verifier
from tests.e2e.console_browser import OPERATOR_REGION, press, session_cookies, shoot, sign_in, text
from tests.factories import referral_body
from tests.support import wait_until


def test_the_ledger_page_in_a_browser(stack, browser, tmp_path):
    url, keys, apis = stack
    referrals, records = apis["referrals"], apis["records"]
    auditor = {"Authorization": f"Bearer {keys['auditor']}"}   # national: records' own view, for the checks

    def refer(**changes):
        answer = requests.post(f"{referrals}/v1/referrals", json=referral_body(0, **changes), timeout=10,
                               headers={"Authorization": f"Bearer {keys['referrer']}"})
        assert answer.status_code == 201, answer.text
        case_id = answer.json()["case_id"]
        wait_until(lambda: "referral.received" in _timeline_types(records, auditor, case_id), timeout=60, interval=0.5)
        return case_id

    def sign_head():
        signed = requests.post(f"{records}/v1/ledger/checkpoints", headers=auditor, timeout=10)
        assert signed.status_code == 201, signed.text

    def shown_head():
        browser.get(f"{url}/operator/ledger")
        return (int(browser.find_element(By.ID, "head-size").text), browser.find_element(By.ID, "head-root").text,
                browser.find_element(By.ID, "head-signature").text)

    ours = refer()
    assert OPERATOR_REGION == referral_body(0)["region"]
    sign_head()

    # --- the operator: the signed head, valid under records' key ---
    sign_in(browser, url, "olu", "operator")
    browser.get(f"{url}/operator/ledger")
    first_size, first_root, signature = shown_head()
    assert first_size >= 1 and signature.startswith("valid")
    shoot(browser, "operator-ledger")

    # --- more referrals: the head grows, and records proves the new one extends the old ---
    refer()
    sign_head()
    second_size, second_root, signature = shown_head()
    assert second_size > first_size and signature.startswith("valid")
    proof = requests.get(f"{records}/v1/ledger/proof/consistency", params={"first": first_size, "second": second_size},
                         headers=auditor, timeout=10).json()
    assert (proof["first_root"], proof["second_root"]) == (first_root, second_root)

    # --- verifying the ledger: records' answer, with how long it took ---
    press(browser, By.ID, "verify")
    verified = browser.find_element(By.ID, "verification").text
    assert verified.startswith("The ledger is intact:") and " entries checked in " in verified
    assert int(verified.split(": ", 1)[1].split(" ", 1)[0]) >= second_size
    shoot(browser, "operator-ledger-verified")
    forged = requests.post(f"{url}/operator/ledger/verify", data={"csrf_token": "forged"},
                           cookies=session_cookies(browser), allow_redirects=False, timeout=10)
    assert forged.status_code == 403 and "did not come from the console" in forged.text

    # --- a malformed reference: named beside the field, what was typed kept, nothing asked of records ---
    browser.find_element(By.ID, "case_id").send_keys("not-a-case")
    press(browser, By.ID, "download")
    assert browser.find_element(By.ID, "case_id-error").text.endswith("usually in groups joined by '-'")
    assert browser.find_element(By.ID, "case_id").get_attribute("value") == "not-a-case"
    assert browser.find_element(By.ID, "case_id").get_attribute("aria-invalid") == "true"

    # --- a case outside the key's region answers exactly as a case that does not exist ---
    theirs = refer(region="north-wales")
    answers = {}
    for label, reference in (("theirs", theirs), ("unknown", str(uuid.uuid4()))):
        browser.get(f"{url}/operator/ledger")
        browser.find_element(By.ID, "case_id").send_keys(reference)
        press(browser, By.ID, "download")
        answers[label] = browser.find_element(By.ID, "case_id-error").text
        assert browser.find_element(By.ID, "case_id").get_attribute("value") == reference
        got = requests.get(f"{url}/operator/ledger/bundle", params={"case_id": reference},
                           cookies=session_cookies(browser), timeout=30)
        assert got.status_code == 404 and "Content-Disposition" not in got.headers
    assert answers["theirs"] == answers["unknown"]
    assert answers["theirs"].endswith("No case with this reference was found, or it is not in your regions")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", browser.find_element(By.ID, "case_id"))
    shoot(browser, "operator-ledger-bundle-error")

    # --- the bundle of a case in the key's region: a real download ---
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    browser.get(f"{url}/operator/ledger")
    browser.find_element(By.ID, "case_id").send_keys(ours)
    browser.find_element(By.ID, "download").click()
    name = f"amends-case-{ours}-bundle.json"
    wait_until(lambda: os.path.exists(downloads / name), timeout=30, interval=0.2)
    downloaded = json.loads((downloads / name).read_text())
    answer = requests.get(f"{url}/operator/ledger/bundle", params={"case_id": ours},
                          cookies=session_cookies(browser), timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    _check_bundle(records, auditor, ours, downloaded)

    # --- Welsh ---
    press(browser, By.CSS_SELECTOR, "a[hreflang='cy']")
    assert browser.find_element(By.ID, "verify").text == "Dilysu'r cyfriflyfr"
    assert "Cyfriflyfr" in browser.find_element(By.TAG_NAME, "nav").text
    press(browser, By.CSS_SELECTOR, "a[hreflang='en']")

    # --- a coordinator may not open the operators' page; they download a bundle from a case's page ---
    sign_in(browser, url, "cora", "coordinator")
    browser.get(f"{url}/operator/ledger")
    assert "Your role may not open this page." in text(browser)
    cookies = session_cookies(browser)
    assert requests.get(f"{url}/operator/ledger", cookies=cookies, allow_redirects=False, timeout=10).status_code == 403
    assert requests.get(f"{url}/operator/ledger/bundle", params={"case_id": ours}, cookies=cookies,
                        allow_redirects=False, timeout=10).status_code == 403
    browser.get(f"{url}/cases/{ours}")
    link = browser.find_element(By.ID, "case-bundle")
    assert link.get_attribute("href") == f"{url}/cases/{ours}/bundle"
    from_case = requests.get(link.get_attribute("href"), cookies=cookies, timeout=30)
    assert from_case.status_code == 200 and from_case.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    _check_bundle(records, auditor, ours, from_case.json())


def _timeline_types(records, headers, case_id):
    answer = requests.get(f"{records}/v1/cases/{case_id}/timeline", headers=headers, timeout=10)
    return {e["type"] for e in answer.json()["entries"]} if answer.status_code == 200 else set()


def _check_bundle(records, headers, case_id, downloaded):
    """The bundle verifies under records' public key, and each entry is records' own: the
    same leaf and inclusion proof records gives for that position, and the same events as
    the case's timeline up to the signed size."""
    key = requests.get(f"{records}/v1/ledger/public-key", headers=headers, timeout=10).text
    summary = bundles.verify(downloaded, Verifier.parse(key))
    assert summary["case_id"] == case_id and summary["entries"] >= 1
    for entry in downloaded["entries"]:
        proof = requests.get(f"{records}/v1/ledger/proof/inclusion", headers=headers, timeout=10,
                             params={"seq": entry["seq"], "tree_size": summary["tree_size"]}).json()
        assert (proof["leaf_hash"], proof["proof"], proof["root_hash"], proof["event_id"]) == (
            entry["leaf_hash"], entry["inclusion_proof"], summary["root"], entry["event"]["id"])
    timeline = requests.get(f"{records}/v1/cases/{case_id}/timeline", headers=headers, timeout=10).json()["entries"]
    assert [e["event"]["id"] for e in downloaded["entries"]] == [
        t["event_id"] for t in timeline if t["seq"] < summary["tree_size"]]
