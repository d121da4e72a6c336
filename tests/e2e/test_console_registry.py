"""The facilitator registry and the cases waiting for staff, in a real browser (headless
Chromium through Selenium) against the real services as processes.

A coordinator registers a facilitator (first with mistakes: each named beside its field,
what was typed kept, and a value only matching refuses shown beside the same field),
changes their capacity and finds them in the list; a case nobody can staff (its victim
speaks Welsh, nobody registered does) shows on the waiting list with why; the
coordinator adds Welsh to the facilitator, and the case leaves the list with an offer to
them; the coordinator deactivates them; a facilitator may not open the registry.
"""
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.e2e.console_browser import press, session_cookies, shoot, sign_in, text
from tests.factories import days_ago, days_ahead, referral_body
from tests.support import wait_until

NEW = "fac-newport-7"


def fill(driver, name, value):
    field = driver.find_element(By.ID, name)
    field.clear()
    field.send_keys(value)


def set_date(driver, name, value):
    """A date input takes its value as the browser's locale writes dates: set it as the form sends it."""
    driver.execute_script("arguments[0].value = arguments[1];", driver.find_element(By.ID, name), value)


def error(driver, name):
    return driver.find_element(By.ID, f"{name}-error").text


def welsh_speaking_case(referrals, key):
    body = referral_body(0)
    body["participants"][0]["language"] = "cy"
    referred = requests.post(f"{referrals}/v1/referrals", json=body, headers={"Authorization": f"Bearer {key}"},
                             timeout=10)
    assert referred.status_code == 201, referred.text
    return referred.json()["case_id"]


def test_a_coordinator_keeps_the_registry_and_staffs_a_waiting_case(stack, browser):
    url, keys, apis = stack
    matching = apis["matching"]
    coordinator = {"Authorization": f"Bearer {keys['coordinator']}"}
    sign_in(browser, url, "cora", "coordinator")

    # --- registering, with mistakes first: each beside its field, everything typed kept ---
    browser.get(f"{url}/facilitators")
    press(browser, By.ID, "add-facilitator")
    fill(browser, "facilitator_id", NEW)
    fill(browser, "name", "Owain Davies")
    fill(browser, "email", "owain.davies@rj.example")
    fill(browser, "regions", "South Wales!")
    set_date(browser, "last_process_on", days_ago(30))
    press(browser, By.ID, "save-facilitator")
    assert "lower-case codes" in error(browser, "regions")
    assert error(browser, "level").endswith("Choose a level")
    assert browser.find_element(By.ID, "regions").get_attribute("aria-invalid") == "true"
    kept = {name: browser.find_element(By.ID, name).get_attribute("value")
            for name in ("facilitator_id", "name", "email", "regions", "last_process_on", "capacity")}
    assert kept == {"facilitator_id": NEW, "name": "Owain Davies", "email": "owain.davies@rj.example",
                    "regions": "South Wales!", "last_process_on": days_ago(30), "capacity": "3"}
    assert browser.find_element(By.ID, "languages-en").is_selected()
    shoot(browser, "coordinator-facilitator-form-errors")

    # a training day in the future passes the console's checks; matching refuses it, beside the same field
    fill(browser, "regions", "south-wales")
    Select(browser.find_element(By.ID, "level")).select_by_value("advanced")
    set_date(browser, "trained_on", days_ahead(10))
    press(browser, By.ID, "save-facilitator")
    assert error(browser, "trained_on").endswith("The service did not accept this value")
    assert browser.find_element(By.ID, "regions").get_attribute("value") == "south-wales"
    assert requests.get(f"{matching}/v1/facilitators/{NEW}", headers=coordinator, timeout=10).status_code == 404

    set_date(browser, "trained_on", "")
    fill(browser, "capacity", "2")
    press(browser, By.ID, "save-facilitator")
    assert browser.current_url.endswith(f"/facilitators?done=created&id={NEW}")
    assert browser.find_element(By.ID, "registry-done").text == f"Facilitator {NEW} was registered."

    # --- their capacity changed, then found in the list ---
    press(browser, By.CSS_SELECTOR, f"a[href='/facilitators/{NEW}']")
    assert browser.find_element(By.ID, "capacity").get_attribute("value") == "2"
    fill(browser, "capacity", "4")
    shoot(browser, "coordinator-facilitator-edit")
    press(browser, By.ID, "save-facilitator")
    assert browser.find_element(By.ID, "registry-done").text == f"Facilitator {NEW} was changed."
    row = browser.find_element(By.ID, f"facilitator-{NEW}").text
    assert "Owain Davies" in row and "Advanced" in row and " 4 " in f" {row} " and "Active" in row
    record = requests.get(f"{matching}/v1/facilitators/{NEW}", headers=coordinator, timeout=10).json()
    assert (record["capacity"], record["languages"], record["email"]) == (4, ["en"], "owain.davies@rj.example")
    shoot(browser, "coordinator-facilitators")

    # --- a case nobody registered can staff: it waits, and the list says why ---
    case_id = welsh_speaking_case(apis["referrals"], keys["referrer"])

    def listed():
        browser.get(f"{url}/waiting")
        return browser.find_elements(By.ID, f"waiting-{case_id}")
    row = wait_until(listed, timeout=60, interval=1)[0]
    assert row.find_element(By.CSS_SELECTOR, "[data-reason]").get_attribute("data-reason") == "no_eligible_facilitator"
    assert "No facilitator fits as lead" in row.text and "under an hour" in row.text
    # the three registered in south-wales all lack Welsh
    assert row.find_element(By.CSS_SELECTOR, "[data-ruled-out='languages']").text == (
        "3 lack a language the case needs")
    assert "3 facilitators work in the region" in row.text
    shoot(browser, "coordinator-waiting")
    # the same in Welsh
    browser.get(f"{url}/language?to=cy&next=/waiting")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Achosion yn aros am staff"
    assert browser.find_element(By.CSS_SELECTOR, f"#waiting-{case_id} [data-ruled-out='languages']").text == (
        "3 heb iaith sydd ei hangen ar yr achos")
    browser.get(f"{url}/language?to=en&next=/waiting")
    press(browser, By.CSS_SELECTOR, f"#waiting-{case_id} a[href='/cases/{case_id}']")
    assert case_id in text(browser)

    # --- the facilitator works in Welsh too: the case leaves the list with an offer to them ---
    browser.get(f"{url}/facilitators/{NEW}")
    browser.find_element(By.ID, "languages-cy").click()
    press(browser, By.ID, "save-facilitator")
    assert browser.find_element(By.ID, "registry-done").text == f"Facilitator {NEW} was changed."

    def gone():
        browser.get(f"{url}/waiting")
        return not browser.find_elements(By.ID, f"waiting-{case_id}")
    wait_until(gone, timeout=60, interval=1)
    offers = requests.get(f"{matching}/v1/cases/{case_id}/assignment", headers=coordinator, timeout=10).json()["offers"]
    assert [(o["facilitator_id"], o["state"]) for o in offers] == [(NEW, "offered")]

    # --- deactivated, after a confirmation step: listed as inactive ---
    browser.get(f"{url}/facilitators/{NEW}")
    press(browser, By.ID, "deactivate-link")
    assert "1 cases they hold" in browser.find_element(By.ID, "deactivate-warning").text
    press(browser, By.ID, "confirm-deactivate")
    assert browser.find_element(By.ID, "registry-done").text.startswith(f"Facilitator {NEW} was deactivated")
    Select(browser.find_element(By.ID, "active")).select_by_value("false")
    press(browser, By.CSS_SELECTOR, "form.filters button")
    assert "Inactive" in browser.find_element(By.ID, f"facilitator-{NEW}").text
    assert requests.get(f"{matching}/v1/facilitators/{NEW}", headers=coordinator, timeout=10).json()["active"] is False
    # without the form's token, nothing is done
    assert requests.post(f"{url}/facilitators/fac-lead/deactivate", data={"csrf_token": "forged"},
                         cookies=session_cookies(browser), allow_redirects=False, timeout=10).status_code == 403
    assert requests.get(f"{matching}/v1/facilitators/fac-lead", headers=coordinator, timeout=10).json()["active"]

    # --- an auditor reads the registry but has nothing to press; a facilitator may not open it ---
    sign_in(browser, url, "aud", "auditor")
    browser.get(f"{url}/facilitators/{NEW}")
    assert browser.find_element(By.ID, "capacity").get_attribute("disabled") is not None
    assert not browser.find_elements(By.ID, "save-facilitator") and not browser.find_elements(By.ID, "deactivate-link")
    assert requests.post(f"{url}/facilitators/{NEW}", data={"capacity": "9"}, cookies=session_cookies(browser),
                         allow_redirects=False, timeout=10).status_code == 403
    sign_in(browser, url, "fred", "facilitator")
    browser.get(f"{url}/facilitators")
    assert "Your role may not open this page." in text(browser)
    assert requests.get(f"{url}/facilitators", cookies=session_cookies(browser), allow_redirects=False,
                        timeout=10).status_code == 403
    assert requests.get(f"{url}/waiting", cookies=session_cookies(browser), allow_redirects=False,
                        timeout=10).status_code == 403
