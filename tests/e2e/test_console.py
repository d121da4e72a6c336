"""The console in a real browser: headless Chromium (Debian's `chromium`) driven by Selenium
through Debian's `chromium-driver`, against the real services as processes, on the shared
broker (a vhost of the test's own) and a FerretDB of the test's own.

Each role signs in; a coordinator decides a case under review, which then appears
staffed; its facilitator accepts the offer; an operator replays a dead letter; a forged
CSRF token is refused; a role is refused a page it may not open; a form error is shown
beside its field with what was typed kept. A screenshot of every screen goes to
var/artifacts/screenshots/<screen>.png.
"""
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.console_browser import (CO, LEAD, PASSWORD, peek_dead_letters, press, session_cookies,
                                       shoot, sign_in, text)
from tests.factories import referral_body
from tests.support import publish_event, read_dead_letters, wait_until


def test_the_console_in_a_browser(stack, browser, amqp_uri):
    url, keys, apis = stack
    referrals, matching = apis["referrals"], apis["matching"]
    referred = requests.post(f"{referrals}/v1/referrals", json=referral_body(0, flags=["sexual_offence"]),
                             headers={"Authorization": f"Bearer {keys['referrer']}"}, timeout=10)
    assert referred.status_code == 201, referred.text
    case_id = referred.json()["case_id"]
    coordinator = {"Authorization": f"Bearer {keys['coordinator']}"}
    wait_until(lambda: requests.get(f"{referrals}/v1/cases/{case_id}", headers=coordinator, timeout=5)
               .json().get("status") == "TRIAGE", timeout=60, interval=0.5)

    # --- signing in: the form, a wrong password, then the coordinator ---
    browser.get(f"{url}/")
    assert browser.current_url.endswith("/sign-in")
    shoot(browser, "sign-in")
    browser.find_element(By.ID, "username").send_keys("cora")
    browser.find_element(By.ID, "password").send_keys("not the password at all")
    press(browser, By.CSS_SELECTOR, "form[action='/sign-in'] button")
    assert "The username or password is not right." in text(browser)
    assert browser.find_element(By.ID, "username").get_attribute("value") == "cora"   # kept
    sign_in(browser, url, "cora", "coordinator")
    assert browser.current_url.endswith("/cases")
    assert case_id in text(browser)
    shoot(browser, "coordinator-cases")

    # the case list's filters: a malformed region is named beside its field, and kept
    browser.find_element(By.ID, "region").send_keys("South Wales!")
    press(browser, By.CSS_SELECTOR, "form.filters button")
    assert browser.find_element(By.ID, "region-error").text.endswith("as the service knows it")
    assert browser.find_element(By.ID, "region").get_attribute("value") == "South Wales!"

    # --- the review queue, and a decision form with errors: each beside its field, the typed text kept ---
    browser.get(f"{url}/review")
    assert case_id in browser.find_element(By.ID, "review-queue").text
    assert "specialist_review_sexual_offence" in text(browser)
    shoot(browser, "coordinator-review-queue")
    press(browser, By.CSS_SELECTOR, f"a[href='/review/{case_id}']")
    browser.find_element(By.ID, "reason_code").send_keys("Not A Code")
    browser.find_element(By.ID, "reason").send_keys("Specialist risk assessment done; both parties want it.")
    press(browser, By.CSS_SELECTOR, "main form button")
    assert browser.find_element(By.ID, "decision-error").text.endswith("Choose suitable or not suitable")
    assert "lower-case letters" in browser.find_element(By.ID, "reason_code-error").text
    assert browser.find_element(By.ID, "reason_code").get_attribute("value") == "Not A Code"
    assert browser.find_element(By.ID, "reason_code").get_attribute("aria-invalid") == "true"
    assert browser.find_element(By.ID, "reason").get_attribute("value") == (
        "Specialist risk assessment done; both parties want it.")
    shoot(browser, "coordinator-decision-form-errors")

    # --- CSRF: the same form with a forged token is refused, and nothing is decided ---
    browser.execute_script("document.querySelector(\"main form input[name='csrf_token']\").value = 'forged';")
    browser.find_element(By.ID, "decision-suitable").click()
    browser.find_element(By.ID, "reason_code").clear()
    browser.find_element(By.ID, "reason_code").send_keys("specialist_risk_assessment_done")
    press(browser, By.CSS_SELECTOR, "main form button")
    assert browser.find_element(By.CSS_SELECTOR, "[data-status='error.csrf']").text.startswith(
        "This form had expired or did not come from the console")
    shoot(browser, "csrf-refused")
    forged = requests.post(f"{url}/review/{case_id}", data={"decision": "suitable", "reason_code": "x", "reason": "y",
                                                             "csrf_token": "forged"},
                           cookies=session_cookies(browser), allow_redirects=False, timeout=10)
    assert forged.status_code == 403
    assessment = requests.get(f"{matching}/v1/cases/{case_id}/assessment",
                              headers=coordinator, timeout=10).json()
    assert assessment["decision"] == "needs_review" and not assessment["reviewed"]

    # --- the decision, for real: the case then appears staffed ---
    browser.get(f"{url}/review/{case_id}")
    browser.find_element(By.ID, "decision-suitable").click()
    browser.find_element(By.ID, "reason_code").send_keys("specialist_risk_assessment_done")
    browser.find_element(By.ID, "reason").send_keys("Specialist risk assessment done; both parties want it.")
    press(browser, By.CSS_SELECTOR, "main form button")
    assert browser.current_url.endswith(f"/cases/{case_id}?decided=1")

    def staffed():
        browser.refresh()
        offers = browser.find_elements(By.ID, "offers")
        return offers and LEAD in offers[0].text and CO in offers[0].text
    wait_until(staffed, timeout=60, interval=1)
    assert browser.find_element(By.ID, "assessment-decision").text == "suitable"   # the coordinator's decision
    shoot(browser, "coordinator-case")

    # --- the facilitator: their offer, accepted; then in my cases ---
    sign_in(browser, url, "fred", "facilitator")
    assert browser.current_url.endswith("/offers")
    assert case_id in browser.find_element(By.ID, "my-offers").text
    shoot(browser, "facilitator-offers")
    press(browser, By.CSS_SELECTOR, "#my-offers button[id^='accept-']")
    assert browser.find_element(By.ID, "answered").text.startswith("You accepted the offer.")
    browser.get(f"{url}/my-cases")
    assert case_id in browser.find_element(By.ID, "my-cases").text
    shoot(browser, "facilitator-my-cases")
    press(browser, By.CSS_SELECTOR, f"#my-cases a[href='/cases/{case_id}']")
    assert browser.find_element(By.ID, "case-status").text in ("ALLOCATED", "ASSESSMENT", "CONTACTING")
    shoot(browser, "facilitator-case")
    assignment = requests.get(f"{matching}/v1/cases/{case_id}/assignment",
                              headers=coordinator, timeout=10).json()
    assert {(o["facilitator_id"], o["state"]) for o in assignment["offers"]} >= {(LEAD, "accepted")}

    # --- a role refused a page it may not open ---
    browser.get(f"{url}/operator")
    assert "Your role may not open this page." in text(browser)
    shoot(browser, "facilitator-refused-operator-page")
    refused = requests.get(f"{url}/operator", cookies=session_cookies(browser), allow_redirects=False, timeout=10)
    assert refused.status_code == 403

    # --- a coordinator of another region neither finds the case nor may open it ---
    sign_in(browser, url, "nia", "coordinator")
    assert case_id not in text(browser) and "0 cases found" in text(browser)
    browser.get(f"{url}/cases/{case_id}")
    assert "There is no such page, or you may not see it." in text(browser)
    assert requests.get(f"{url}/cases/{case_id}", cookies=session_cookies(browser), allow_redirects=False,
                        timeout=10).status_code == 404
    shoot(browser, "coordinator-other-region-case")

    # --- the auditor, signing in with the keyboard alone: the skip link comes first, then the form ---
    browser.delete_all_cookies()
    browser.get(f"{url}/sign-in")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("class") == "skip"
    focused = browser.switch_to.active_element
    assert focused.value_of_css_property("outline-style") == "solid"   # the focus can be seen
    for _ in range(10):   # on through the header to the first field
        if browser.switch_to.active_element.get_attribute("id") == "username":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    browser.switch_to.active_element.send_keys("aud", Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "password"
    browser.execute_script("window.amendsOldPage = true;")
    browser.switch_to.active_element.send_keys(PASSWORD["auditor"], Keys.ENTER)
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(lambda d: d.execute_script(
        "return window.amendsOldPage === undefined && document.readyState === 'complete';"))
    assert browser.current_url.endswith("/cases") and case_id in text(browser)
    shoot(browser, "auditor-cases")
    assert requests.get(f"{url}/review", cookies=session_cookies(browser), allow_redirects=False,
                        timeout=10).status_code == 403

    # --- the operator: pipeline health and queues, then a dead letter replayed ---
    publish_event(amqp_uri, None, body=b"{not json")
    sign_in(browser, url, "olu", "operator")
    assert browser.current_url.endswith("/operator")
    health = browser.find_element(By.ID, "health").text
    assert "referrals ok" in health and "matching ok" in health and "subscriptions unreachable" in health
    assert "matching.assess" in browser.find_element(By.ID, "queues").text
    shoot(browser, "operator-pipeline")

    def letter_listed():
        browser.get(f"{url}/operator/dead-letters/matching")
        rows = browser.find_elements(By.CSS_SELECTOR, "#letters tbody tr")
        return rows[0].find_element(By.TAG_NAME, "a").text if rows else None
    letter_id = wait_until(letter_listed, timeout=60, interval=1)
    assert "matching.assess" in browser.find_element(By.ID, "letters").text
    shoot(browser, "operator-dead-letters")
    press(browser, By.LINK_TEXT, letter_id)
    assert "Its body is not shown" in text(browser)
    shoot(browser, "operator-dead-letter")
    press(browser, By.ID, "replay")
    assert browser.find_element(By.ID, "letter-done").text == "The letter was replayed into its queue."
    shoot(browser, "operator-dead-letter-replayed")
    # it went back to matching.assess, which (still unable to read it) dead-lettered it again,
    # marked as the replay of the letter the operator chose
    replayed = wait_until(lambda: [h for h in peek_dead_letters(amqp_uri, "matching")
                                   if h.get("x-amends-replayed") == letter_id], timeout=60, interval=1)
    again = replayed[0]["x-amends-dead-letter-id"]
    assert replayed[0]["x-amends-queue"] == "matching.assess" and again != letter_id
    # that one the operator discards: it is gone from the console and from the broker
    browser.get(f"{url}/operator/dead-letters/matching/{again}")
    press(browser, By.ID, "discard")
    assert browser.find_element(By.ID, "letter-done").text == "The letter was discarded."
    assert browser.find_elements(By.ID, "no-letters")
    assert read_dead_letters(amqp_uri, "matching") == []

    # --- Welsh ---
    press(browser, By.CSS_SELECTOR, "a[hreflang='cy']")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "cy"
    assert "Iechyd y system" in browser.find_element(By.TAG_NAME, "nav").text
    shoot(browser, "operator-dead-letters-welsh")

    # --- signing out ends the session on the server ---
    cookies = session_cookies(browser)
    press(browser, By.CSS_SELECTOR, ".sign-out button")
    assert browser.current_url.endswith("/sign-in")
    assert requests.get(f"{url}/operator", cookies=cookies, allow_redirects=False, timeout=10).status_code == 303
