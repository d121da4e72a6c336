"""The console's report pages in a real browser (tests/e2e/console_browser.py), against the
real referrals, records and reports services as processes: referrals sent through the
referrals API reach records' ledger and the reports service's read model; the coordinator's
chart, table and CSV download agree with each other and with the referrals sent (counted
here from what was sent); the national auditor sees the small counts hidden ("fewer than
5", never 0; "[c]" in the CSV); a facilitator is refused the pages; a bad filter is named
beside its field with what was typed kept. Screenshots: report-list, report-referrals,
report-filter-errors, report-national in var/artifacts/screenshots/.
"""
import csv
import io
from collections import Counter
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.e2e.console_browser import console_stack, press, session_cookies, shoot, sign_in, text
from tests.factories import referral_body
from tests.support import wait_until

LONDON = ZoneInfo("Europe/London")
SENT = (0, 1, 3, 4)   # the sample referrals sent: south Wales, four offence categories, one each
AGENCY = "test-police"   # the referrer key's agency (tests/support.provision_keys)


@pytest.fixture
def stack(amqp_uri, tmp_path):
    with console_stack(amqp_uri, tmp_path, services=("referrals", "records", "reports")) as started:
        yield started


def london(moment, pattern):
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(LONDON).strftime(pattern)


def week(moment):
    """The ISO week of the national view: of the event's UTC time (docs/reports.md)."""
    year, number, _ = datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(timezone.utc).isocalendar()
    return f"{year}-W{number:02d}"


def bars(browser):
    """(period, series label) -> (the bar's data-value, its <title>, its written value)."""
    found = {}
    for bar in browser.find_elements(By.CSS_SELECTOR, "#report-chart g.bar"):
        title = bar.find_element(By.TAG_NAME, "title").get_attribute("textContent")
        written = bar.find_element(By.CSS_SELECTOR, "text.chart-value").get_attribute("textContent")
        found[(bar.get_attribute("data-period"), bar.get_attribute("data-series"))] = (
            bar.get_attribute("data-value"), bar.get_attribute("data-suppressed"), title, written)
    return found


def table(browser, figure):
    """The table's rows: (period, the dimensions' values...) -> the figure's cell."""
    found = {}
    for row in browser.find_elements(By.CSS_SELECTOR, "#report-table tbody tr"):
        cells = row.find_elements(By.TAG_NAME, "td")
        cell = row.find_element(By.CSS_SELECTOR, f"td[data-column='{figure}']")
        found[tuple(c.text for c in cells if c.get_attribute("data-column") is None)] = (
            cell.get_attribute("data-value"), cell.get_attribute("data-suppressed"), cell.text)
    return found


def download(browser, url):
    """The page's "Download CSV" link, fetched with the browser's session cookie."""
    href = browser.find_element(By.ID, "download-csv").get_attribute("href")
    answer = requests.get(href, cookies=session_cookies(browser), timeout=10)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["Content-Disposition"].startswith("attachment; filename=")
    assert answer.headers["Content-Type"].startswith("text/csv")
    return answer


def test_report_pages_chart_and_csv_agree_with_the_referrals_sent(stack, browser):
    url, keys, apis = stack
    referrer = {"Authorization": f"Bearer {keys['referrer']}"}
    coordinator = {"Authorization": f"Bearer {keys['coordinator']}"}
    bodies = [referral_body(i) for i in SENT]
    received = []
    for body in bodies:
        made = requests.post(f"{apis['referrals']}/v1/referrals", json=body, headers=referrer, timeout=10)
        assert made.status_code == 201, made.text
        case = requests.get(f"{apis['referrals']}/v1/cases/{made.json()['case_id']}", headers=coordinator, timeout=10)
        received.append(case.json()["created_at"])
    # what the referrals sent imply, worked out here: each counted once, in its London month
    expected = Counter((london(at, "%Y-%m"), f"{body['region']} · {AGENCY} · {body['offence']['category']}")
                       for body, at in zip(bodies, received))
    assert sum(expected.values()) == len(SENT)

    def folded():
        answer = requests.get(f"{apis['reports']}/v1/reports/referrals", headers=coordinator, timeout=10).json()
        return answer if sum(r["referrals"] for r in answer["rows"]) == len(SENT) else None
    wait_until(folded, timeout=90, interval=0.5)

    # --- the coordinator: the list of measures, with their definitions in short ---
    sign_in(browser, url, "cora", "coordinator")
    press(browser, By.CSS_SELECTOR, "nav a[href='/reports']")
    listed = browser.find_element(By.ID, "report-list").text
    assert "Referrals by agency, region and offence" in listed and "Attrition at each stage" in listed
    assert "Each case once, in the period its referral was received" in listed
    shoot(browser, "report-list")

    # --- a report: the chart's bars, the table and the CSV agree, and with what was sent ---
    press(browser, By.CSS_SELECTOR, "#report-list a[href='/reports/referrals']")
    chart = browser.find_element(By.ID, "report-chart")
    assert chart.get_attribute("role") == "img"
    assert browser.find_element(By.ID, "chart-title").get_attribute("textContent").endswith("Referrals by period")
    drawn = bars(browser)
    charted = Counter({key: int(value) for key, (value, _, _, _) in drawn.items() if int(value)})
    assert charted == expected
    for (period, label), (value, hidden, title, written) in drawn.items():
        assert title == f"{period} · {label}: {value}" and written == value and hidden is None
    tabled = Counter({(cells[0], " · ".join(cells[1:])): int(value)
                      for cells, (value, _, shown) in table(browser, "referrals").items() if shown == value})
    assert tabled == expected
    shoot(browser, "report-referrals")
    downloaded = download(browser, url)
    direct = requests.get(f"{apis['reports']}/v1/reports/referrals.csv", headers=coordinator, timeout=10)
    assert downloaded.content == direct.content   # the reports API's CSV, unchanged
    rows = list(csv.DictReader(io.StringIO(downloaded.text)))
    assert Counter({(r["period"], f"{r['region']} · {r['agency']} · {r['offence_category']}"): int(r["referrals"])
                    for r in rows}) == expected

    # --- bad filters: each named beside its field, what was typed kept, nothing asked of the API ---
    browser.find_element(By.ID, "from").send_keys("1st April")
    browser.find_element(By.ID, "to").send_keys("2026-04-01")
    press(browser, By.CSS_SELECTOR, "form.report-filters button")
    assert browser.find_element(By.ID, "from-error").text.endswith("for example 2026-04-01")
    assert browser.find_element(By.ID, "from").get_attribute("value") == "1st April"
    assert browser.find_element(By.ID, "from").get_attribute("aria-invalid") == "true"
    assert browser.find_element(By.ID, "to").get_attribute("value") == "2026-04-01"
    assert not browser.find_elements(By.ID, "report-chart")
    browser.find_element(By.ID, "from").clear()
    browser.find_element(By.ID, "from").send_keys("2026-05-01")
    press(browser, By.CSS_SELECTOR, "form.report-filters button")
    assert browser.find_element(By.ID, "to-error").text.endswith("the same as the first day or after it")
    assert browser.find_element(By.ID, "from").get_attribute("value") == "2026-05-01"
    # the field at fault is marked in the error colour, not only by the text beside it
    assert browser.find_element(By.ID, "to").value_of_css_property("border-top-color") == "rgba(164, 0, 29, 1)"
    shoot(browser, "report-filter-errors")
    refused = requests.get(f"{url}/reports/referrals", params={"period": "fortnight"},
                           cookies=session_cookies(browser), timeout=10)
    assert refused.status_code == 400 and 'id="period-error"' in refused.text
    # a quarter: the same referrals, in the quarter of their months
    browser.get(f"{url}/reports/referrals?period=quarter")
    quarters = Counter()
    for (month, label), n in expected.items():
        quarters[(f"{month[:4]}-Q{(int(month[5:]) - 1) // 3 + 1}", label)] += n
    assert Counter({key: int(value) for key, (value, _, _, _) in bars(browser).items() if int(value)}) == quarters
    # in Welsh, the same page
    browser.get(f"{url}/language?to=cy&next=/reports/referrals")
    assert browser.find_element(By.ID, "download-csv").text == "Lawrlwytho CSV"
    browser.get(f"{url}/language?to=en&next=/reports")

    # --- the national auditor: de-identified weekly figures, each small count hidden, never 0 ---
    sign_in(browser, url, "aud", "auditor")
    browser.get(f"{url}/reports")
    assert browser.find_element(By.ID, "report-view").get_attribute("data-view") == "national"
    assert "/reports/attrition" not in browser.page_source   # not in the national view
    browser.get(f"{url}/reports/referrals")
    weekly = Counter((week(at), body["offence"]["category"]) for body, at in zip(bodies, received))
    assert all(n < 5 for n in weekly.values())   # every one of them a small count
    national = bars(browser)
    shown = {(period, label.split(" · ")[-1]): (value, hidden, title, written)
             for (period, label), (value, hidden, title, written) in national.items()}
    assert set(shown) >= set(weekly)
    for key in weekly:
        value, hidden, title, written = shown[key]
        assert (value, hidden, written) == ("", "true", "fewer than 5") and title.endswith(": fewer than 5")
    cells = {(cells[0], cells[-1]): (value, hidden, said) for cells, (value, hidden, said)
             in table(browser, "referrals").items()}
    for key in weekly:
        assert cells[key] == ("", "true", "fewer than 5")
    assert "0" not in [said for _, _, said in cells.values()]
    shoot(browser, "report-national")
    national_rows = list(csv.DictReader(io.StringIO(download(browser, url).text)))
    assert {(r["period"], r["offence_category"]): r["referrals"] for r in national_rows} == {
        key: "[c]" for key in weekly}
    month_asked = requests.get(f"{url}/reports/referrals", params={"period": "month"},
                               cookies=session_cookies(browser), timeout=10)
    assert month_asked.status_code == 400 and 'id="period-error"' in month_asked.text

    # --- a facilitator is refused the report pages and their CSV ---
    sign_in(browser, url, "fred", "facilitator")
    assert "/reports" not in [a.get_attribute("href").replace(url, "")
                              for a in browser.find_elements(By.CSS_SELECTOR, "nav a")]
    browser.get(f"{url}/reports/referrals")
    assert "Your role may not open this page." in text(browser)
    for path in ("/reports", "/reports/referrals", "/reports/referrals.csv"):
        assert requests.get(f"{url}{path}", cookies=session_cookies(browser), allow_redirects=False,
                            timeout=10).status_code == 403
