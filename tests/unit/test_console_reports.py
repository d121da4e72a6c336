"""The console's report pages without a network: the filters (each error named, what was
typed kept), the chart laid out from a reports API answer (a bar per period and series,
each carrying its value; a hidden national figure drawn as "fewer than 5", never 0), and
the chart drawn as accessible inline SVG beside a table of the same figures."""
import re

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.console import charts, i18n, report_pages, sessions
from services.console.web import TEMPLATES
from services.reports import views
from tests.unit.test_console_rules import contrast, make_console, request, session_cookie, sign_in

COLUMNS = [views.column_of(c) for c in ("period", "region", "offence_category", "referrals")]
REGIONAL = {
    "measure": "referrals", "view": "regional", "columns": COLUMNS, "periods": ["2026-03", "2026-04"],
    "as_of": "2026-04-03T10:00:00+00:00", "ledger_position": 4,
    "series": [{"key": {"region": "gwent", "offence_category": "theft"}, "label": "gwent · theft",
                "values": {"referrals": [2, 0]}},
               {"key": {"region": "gwent", "offence_category": "burglary"}, "label": "gwent · burglary",
                "values": {"referrals": [1, 4]}}],
    "rows": [{"period": "2026-03", "region": "gwent", "offence_category": "theft", "referrals": 2},
             {"period": "2026-03", "region": "gwent", "offence_category": "burglary", "referrals": 1},
             {"period": "2026-04", "region": "gwent", "offence_category": "burglary", "referrals": 4}]}
NATIONAL = {
    "measure": "referrals", "view": "national", "columns": COLUMNS, "periods": ["2026-W15"],
    "as_of": None, "ledger_position": 9, "suppression": {"below": 5, "csv_marker": "[c]"},
    "series": [{"key": {"region": "test", "offence_category": "theft"}, "label": "test · theft",
                "values": {"referrals": [None]}},
               {"key": {"region": "test", "offence_category": "burglary"}, "label": "test · burglary",
                "values": {"referrals": [6]}}],
    "rows": [{"period": "2026-W15", "region": "test", "offence_category": "theft", "referrals": None,
              "suppressed": ["referrals"]},
             {"period": "2026-W15", "region": "test", "offence_category": "burglary", "referrals": 6,
              "suppressed": []}]}


def test_the_filters_name_each_field_at_fault_and_keep_what_was_typed():
    values, errors = report_pages.filters({"period": "fortnight", "from": "1 April", "to": "2026-02-30",
                                           "figure": "nothing"}, "regional", ["referrals"])
    assert values == {"period": "fortnight", "from": "1 April", "to": "2026-02-30", "figure": "nothing"}
    assert errors == {"period": "error.report_period", "from": "error.report_date", "to": "error.report_date",
                      "figure": "error.report_figure"}
    _, errors = report_pages.filters({"from": "2026-05-01", "to": "2026-04-30"}, "regional", [])
    assert errors == {"to": "error.report_to_before_from"}
    assert report_pages.filters({"period": "month"}, "national", [])[1] == {"period": "error.report_period"}
    assert report_pages.filters({"period": " week ", "from": "2026-04-01", "to": "2026-04-01"}, "national", [])[1] == {}


def test_the_chart_has_a_bar_per_period_and_series_each_with_its_value():
    drawn = charts.chart(REGIONAL, "referrals")
    assert [(b.period, b.label, b.value) for b in drawn.bars] == [
        ("2026-03", "gwent · theft", 2), ("2026-03", "gwent · burglary", 1),
        ("2026-04", "gwent · theft", 0), ("2026-04", "gwent · burglary", 4)]
    widths = {(b.period, b.label): b.width for b in drawn.bars}
    assert widths[("2026-04", "gwent · burglary")] == charts.BAR_ROOM   # the largest is the longest
    assert widths[("2026-03", "gwent · theft")] == charts.BAR_ROOM / 2 and widths[("2026-04", "gwent · theft")] == 0
    assert charts.default_figure(REGIONAL) == "referrals"


def test_a_hidden_national_figure_is_no_bar_and_never_zero():
    drawn = charts.chart(NATIONAL, "referrals")
    hidden = [b for b in drawn.bars if b.hidden]
    assert [(b.label, b.value, b.width) for b in hidden] == [("test · theft", None, 0)]
    say = i18n.translator("en")
    assert report_pages.figure_text(say, None, "count", True, NATIONAL) == "fewer than 5"
    assert report_pages.figure_text(i18n.translator("cy"), None, "count", True, NATIONAL) == "llai na 5"
    assert report_pages.figure_text(say, None, "rate") == "no figure"
    assert report_pages.figure_text(say, 0.75, "rate") == "75.0%"
    assert report_pages.figure_text(say, 0, "count") == "0"


def render(answer, lang="en"):
    templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    say = i18n.translator(lang)
    return templates.get_template("report_chart.html").render(
        _=say, chart=charts.chart(answer, "referrals"), answer=answer, measure={"name": "referrals"},
        figure_text=lambda value, kind, hidden=False: report_pages.figure_text(say, value, kind, hidden, answer))


def test_the_svg_is_an_image_with_a_title_and_description_and_each_bar_says_its_value():
    svg = render(NATIONAL)
    assert re.search(r'<svg id="report-chart" role="img" aria-labelledby="chart-title chart-desc"', svg)
    assert '<title id="chart-title">Referrals by agency, region and offence: Referrals by period</title>' in svg
    assert '<desc id="chart-desc">' in svg
    assert re.search(r'data-value="6">\s*<title>2026-W15 · test · burglary: 6</title>', svg)
    assert re.search(r'data-value="" data-suppressed="true">\s*<title>2026-W15 · test · theft: fewer than 5</title>',
                     svg)
    assert "Siart bar" in render(REGIONAL, "cy")
    assert f'fill="{charts.BAR_COLOUR}"' in svg and contrast(charts.BAR_COLOUR, "#ffffff") >= 4.5



# --- the pages, with the reports API's answers given here (the real API: tests/e2e) ----------

class Answer:
    def __init__(self, status, body=None, content=b"", headers=None):
        self.status_code, self.body, self.content, self.headers = status, body, content, headers or {}

    def json(self):
        if self.body is None:
            raise ValueError("no JSON")
        return self.body


class ReportsApi:
    """What the reports API answers the page: the list, then `measure` (an Answer)."""

    def __init__(self, measure):
        self.measure, self.asked = measure, []

    def request(self, method, url, params=None, headers=None, **_):
        self.asked.append((url.split("/v1/", 1)[1], params))
        if url.endswith("/v1/reports"):
            return Answer(200, {"view": "regional", "items": [
                {"name": "referrals", "title": "t", "href": "/v1/reports/referrals", "columns": COLUMNS}]})
        return self.measure


def page(measure, path, api=None):
    """The console's answer to a coordinator's GET of `path`, the reports API answering
    `measure` (or `api` answering everything)."""
    api = api or ReportsApi(measure)
    console = make_console(urls={"reports": "http://reports"}, api_session=api)
    cookie = session_cookie(sign_in(console, "cora", "a long password 1"))
    name = path.split("?")[0].rsplit("/", 1)[1]
    handler, kwargs = (report_pages.report_list, {}) if name == "reports" else (report_pages.report_page,
                                                                                {"measure": name})
    answer = console.handle(request("GET", path, cookies={sessions.COOKIE: cookie}), handler,
                            roles=("coordinator", "auditor"), **kwargs)
    return answer, api


def test_a_400_from_the_reports_api_is_shown_beside_the_field_it_names_with_what_was_typed():
    refusal = Answer(400, {"error": "bad_request", "message": "the query parameter 'from' ...", "param": "from"})
    answer, api = page(refusal, "/reports/referrals?from=0001-01-01")
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert re.search(r'id="from-error">.*The reports service did not accept this value', html)
    assert 'value="0001-01-01"' in html and 'aria-invalid="true"' in html
    assert api.asked[-1] == ("reports/referrals", {"from": "0001-01-01"})


def test_the_csv_is_the_reports_api_s_unchanged_as_an_attachment():
    body = b"period,region,offence_category,referrals\r\n2026-04,gwent,theft,2\r\n"
    csv_answer = Answer(200, content=body, headers={
        "Content-Type": "text/csv; charset=utf-8; header=present",
        "Content-Disposition": 'attachment; filename="referrals-regional-quarter.csv"'})
    answer, api = page(csv_answer, "/reports/referrals.csv?period=quarter")
    assert answer.status_code == 200 and answer.get_data() == body
    assert answer.headers["Content-Disposition"] == 'attachment; filename="referrals-regional-quarter.csv"'
    assert answer.headers["Content-Type"].startswith("text/csv") and answer.headers["Cache-Control"] == "no-store"
    assert api.asked[-1] == ("reports/referrals.csv", {"period": "quarter"})
    unknown, _ = page(csv_answer, "/reports/no_such_measure.csv")
    assert unknown.status_code == 404


def test_a_key_the_reports_api_refuses_gets_a_page_saying_who_reports_are_for():
    class Refusing(ReportsApi):
        def request(self, method, url, **kwargs):
            return Answer(403, {"error": "forbidden", "message": "reports are for coordinators ..."})
    answer, _ = page(None, "/reports", Refusing(None))
    assert answer.status_code == 403 and "auditors with a national key" in answer.get_data(as_text=True)
