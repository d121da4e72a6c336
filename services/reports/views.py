"""What a caller of the reports API sees: which view (their regions, or the de-identified
national one), which periods, and the rows shaped for a table and for a chart. Pure: the
service hands in the read model's state and the caller.

- A coordinator sees the regional measures, narrowed to the regions on their key (every
  region, for a national key): exactly the full report's rows for those regions.
- An auditor with a national key sees the national view only (national.py), computed from
  what the national side would receive of this region's events, with small numbers
  suppressed (disclosure.py).
- Anyone else is refused (403): a regional auditor included, for now.
"""
from datetime import date, datetime, time
from typing import NamedTuple

from services.referrals.deadlines import LONDON
from services.reports import csv_export, disclosure, measures, national
from services.reports.periods import GRANULARITIES, period_of

# The measures' names as their definitions (docs/reports.md) give them.
TITLES = {
    "referrals": "Referrals by agency, region and offence",
    "suitability": "Suitability decisions",
    "suitability_reasons": "The reasons given for suitability decisions",
    "attrition": "Attrition at each stage",
    "closures": "Why and where cases closed",
    "first_contact": "Time from referral to first contact",
    "victims_code": "Victims' Code compliance",
    "processes": "Direct against indirect processes",
    "agreements": "Outcome agreements completed",
    "satisfaction": "What the people who took part thought",
}
assert set(TITLES) == set(measures.MEASURES), "every measure needs its title"

# The columns a row is broken down by (a chart's series); the others are figures.
DIMENSIONS = {"region", "agency", "offence_category", "decision", "basis", "reason", "stage", "closure_class",
              "closure_reason", "party", "deadline", "working_days", "process_class", "process_type"}
REGIONAL = "regional"
NATIONAL = "national"
DEFAULT_PERIOD = {REGIONAL: "month", NATIONAL: "week"}


class InvalidQuery(ValueError):
    """A query parameter the API cannot use: `param` names it."""

    def __init__(self, param, message):
        self.param = param
        super().__init__(message)


class UnknownMeasure(LookupError):
    pass


class NotAllowed(PermissionError):
    pass


class Audience(NamedTuple):
    view: str            # REGIONAL or NATIONAL
    regions: frozenset   # a regional view's regions (None: every region)


class Query(NamedTuple):
    granularity: str
    first: str           # the first period label kept (None: from the first)
    last: str            # the last period label kept (None: to the last)
    start: date
    end: date


def audience(principal):
    """Which view `principal` (a caller already allowed the route) sees."""
    if principal.role == "coordinator":
        return Audience(REGIONAL, None if principal.national else frozenset(principal.regions))
    if principal.role == "auditor" and principal.national:
        return Audience(NATIONAL, None)
    raise NotAllowed("reports are for coordinators (their regions) and national auditors (the national view)")


def _day(args, name):
    text = (args.get(name) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidQuery(name, f"the query parameter '{name}' must be a date, YYYY-MM-DD") from None


def query(args, seen_by):
    """The Query that request arguments `args` ask of `seen_by` (an Audience)."""
    allowed = national.GRANULARITIES if seen_by.view == NATIONAL else GRANULARITIES
    granularity = (args.get("period") or "").strip() or DEFAULT_PERIOD[seen_by.view]
    if granularity not in allowed:
        where = " in the national view" if seen_by.view == NATIONAL else ""
        raise InvalidQuery("period", f"the query parameter 'period' must be one of {', '.join(allowed)}{where}")
    start, end = _day(args, "from"), _day(args, "to")
    if start and end and end < start:
        raise InvalidQuery("to", "the query parameter 'to' must not be before 'from'")
    return Query(granularity, _period(start, granularity), _period(end, granularity), start, end)


def _period(day, granularity):
    """The label of the period a London day falls in (None for no day)."""
    return None if day is None else period_of(datetime.combine(day, time(12), LONDON), granularity)


def catalogue(seen_by):
    """The measures `seen_by` may ask for, with their titles and columns."""
    listed = []
    for name, title in TITLES.items():
        if seen_by.view == NATIONAL and name not in national.MEASURES:
            continue
        measure = national.MEASURES[name] if seen_by.view == NATIONAL else measures.MEASURES[name]
        listed.append({"name": name, "title": title, "href": f"/v1/reports/{name}",
                       "columns": [column_of(c) for c in measure.columns]})
    return listed


def column_of(name):
    if name == "period":
        kind = "period"
    elif name in DIMENSIONS:
        kind = "dimension"
    elif name.endswith("_rate") or name == "share":
        kind = "rate"
    elif name.startswith("median"):
        kind = "median"
    else:
        kind = "count"
    return {"name": name, "label": name.replace("_", " ").capitalize(), "kind": kind}


class Report(NamedTuple):
    name: str
    columns: tuple
    rows: list
    seen_by: Audience
    query: Query


def report(name, state, seen_by, asked, region):
    """The Report of measure `name` for `seen_by`, from the read model `state`. `region`: the
    deployment's (AMENDS_REGION), which the national view names."""
    if name not in TITLES:
        raise UnknownMeasure(f"no such measure; the measures are {', '.join(TITLES)}")
    if seen_by.view == NATIONAL:
        if name not in national.MEASURES:
            raise UnknownMeasure(f"not in the national view: {national.UNAVAILABLE[name]}")
        columns = national.MEASURES[name].columns
        rows = national.compute(name, list(national.statistics_of(state, region)), asked.granularity)
        rows = disclosure.suppress(name, _within(rows, asked))
    else:
        columns = measures.MEASURES[name].columns
        rows = _within(measures.compute(name, state, asked.granularity, seen_by.regions), asked)
    return Report(name, columns, rows, seen_by, asked)


def _within(rows, asked):
    return [row for row in rows if (asked.first is None or row["period"] >= asked.first)
            and (asked.last is None or row["period"] <= asked.last)]


def as_json(made, state, position):
    """The report as the API's JSON: the rows (a table), and the same figures as series per
    period (a chart): one series per combination of the breakdown's values."""
    columns = [column_of(c) for c in made.columns]
    dimensions = [c["name"] for c in columns if c["kind"] == "dimension"]
    figures = [c["name"] for c in columns if c["kind"] not in ("period", "dimension")]
    periods = sorted({row["period"] for row in made.rows})
    series = {}
    for row in made.rows:
        key = tuple(row[d] for d in dimensions)
        one = series.setdefault(key, {
            "key": dict(zip(dimensions, key)), "label": " · ".join(str(v) for v in key) or made.name,
            "values": {f: [0 if column_of(f)["kind"] == "count" else None] * len(periods) for f in figures}})
        at = periods.index(row["period"])
        for f in figures:
            one["values"][f][at] = row[f]
    body = {
        "measure": made.name, "title": TITLES[made.name], "view": made.seen_by.view,
        "period": made.query.granularity,
        "from": made.query.start.isoformat() if made.query.start else None,
        "to": made.query.end.isoformat() if made.query.end else None,
        "regions": sorted(made.seen_by.regions) if made.seen_by.regions is not None else None,
        "as_of": state.latest.isoformat() if state.latest else None, "ledger_position": position,
        "columns": columns, "periods": periods, "series": list(series.values()), "rows": made.rows,
    }
    if made.seen_by.view == NATIONAL:
        body["suppression"] = {"below": disclosure.SMALL, "csv_marker": disclosure.HIDDEN}
    return body


def as_csv(made):
    rows = disclosure.csv_rows(made.rows) if made.seen_by.view == NATIONAL else made.rows
    return csv_export.to_csv(rows, made.columns)


def csv_filename(made):
    return f"{made.name}-{made.seen_by.view}-{made.query.granularity}.csv"
