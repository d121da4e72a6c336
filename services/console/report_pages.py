"""The report pages (coordinators, auditors): the standard measures the reports API lets the
signed-in person's key ask for, each as a chart and the same figures as a table, and its CSV.

Everything comes from the reports API with the person's own key: which measures (and which
view: a coordinator's regions, or the de-identified national one), the figures, the CSV.
The filters are checked here first, each error beside its field with what was typed kept;
a 400 from the API is shown beside the field its `param` names.
"""
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from services.console import charts, forms
from services.console.apis import Refused
from services.console.web import PageError

PERIODS = ("week", "month", "quarter", "year")
NATIONAL_PERIODS = ("week",)
FILTERS = ("period", "from", "to", "figure")
CSV_SUFFIX = ".csv"


def filters(raw, view, figures):
    """The report page's filters as typed (trimmed) and field -> message key for each at fault.
    `view`: the key's view (regional or national); `figures`: the figure columns' names."""
    values = {name: (raw.get(name) or "").strip()[:100] for name in FILTERS}
    errors = {}
    if values["period"] and values["period"] not in periods_of(view):
        errors["period"] = "error.report_period"
    days = {}
    for name in ("from", "to"):
        if values[name]:
            days[name] = forms.day_of(values[name])
            if days[name] is None:
                errors[name] = "error.report_date"
    if None not in days.values() and len(days) == 2 and days["to"] < days["from"]:
        errors["to"] = "error.report_to_before_from"
    if values["figure"] and values["figure"] not in figures:
        errors["figure"] = "error.report_figure"
    return values, errors


def periods_of(view):
    return NATIONAL_PERIODS if view == "national" else PERIODS


def _catalogue(apis):
    """(the key's view, its measures by name) from the reports API, which refuses any key but a
    coordinator's or a national auditor's (a regional auditor's, for now)."""
    try:
        listed = apis.get("reports", "/v1/reports")
    except Refused as refused:
        if refused.status == 403:
            raise PageError(403, "error.reports_refused")
        raise
    return listed["view"], {item["name"]: item for item in listed["items"]}


def report_list(visit):
    view, measures = _catalogue(visit.apis())
    return visit.render("reports.html", view=view, measures=list(measures.values()))


def report_page(visit, measure):
    """A measure's page, or (a name ending .csv) its CSV as a download."""
    apis = visit.apis()
    view, measures = _catalogue(apis)
    as_csv = measure.endswith(CSV_SUFFIX)
    name = measure[:-len(CSV_SUFFIX)] if as_csv else measure
    if name not in measures:   # not a measure, or not one this key's view has
        raise PageError(404, "error.not_found")
    figures = [c for c in measures[name]["columns"] if c["kind"] in charts.FIGURES]
    values, errors = filters(visit.args, view, [c["name"] for c in figures])
    asked = {k: values[k] for k in ("period", "from", "to") if values[k]}
    answer, refused_key = None, None
    if not errors:
        try:
            if as_csv:
                return _download(visit, apis, name, asked)
            answer = apis.get("reports", f"/v1/reports/{name}", **asked)
        except Refused as refused:
            if refused.status != 400:
                raise
            param = refused.body.get("param")
            if param in FILTERS:
                errors = {param: "error.report_refused_value"}
            else:
                refused_key = "error.bad_request"
    figure = values["figure"] or (charts.default_figure(answer) if answer else None)
    drawn = charts.chart(answer, figure) if answer and figure and answer["rows"] else None
    return visit.render("report.html", status=400 if errors or refused_key else 200, measure=measures[name],
                        view=view, periods=periods_of(view), figures=figures, values=values, errors=errors,
                        refused_key=refused_key, answer=answer, chart=drawn, hidden=_hidden(answer),
                        csv_href=f"/reports/{name}{CSV_SUFFIX}" + (f"?{urlencode(asked)}" if asked else ""),
                        figure_text=lambda value, kind, hidden=False: figure_text(visit._, value, kind, hidden,
                                                                                 answer))


def _download(visit, apis, name, asked):
    """The reports API's CSV, unchanged, as an attachment."""
    content, content_type, disposition = apis.download("reports", f"/v1/reports/{name}{CSV_SUFFIX}", **asked)
    if not (disposition or "").startswith("attachment"):
        disposition = f'attachment; filename="{name}.csv"'
    response = Response(content, status=200, content_type=content_type or "text/csv; charset=utf-8",
                        headers={"Content-Disposition": disposition})
    return visit.console.finish(response, visit.cookies)


def _hidden(answer):
    """A row's hidden cells (the national view's), by the row's index."""
    return [set(row.get("suppressed") or ()) for row in (answer or {}).get("rows", ())]


def figure_text(_, value, kind, hidden=False, answer=None):
    """A figure as the page says it: a hidden one as "fewer than N" (never 0), a rate as a
    percentage, nothing to compute from as "no figure"."""
    if hidden:
        below = ((answer or {}).get("suppression") or {}).get("below", 5)
        return _("reports.fewer_than", below=below)
    if value is None:
        return _("reports.no_figure")
    if kind == "rate":
        return f"{value * 100:.1f}%"
    return str(value)
