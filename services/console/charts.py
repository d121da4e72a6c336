"""A report's figures as a bar chart, laid out here and drawn as inline SVG by the template
(templates/report_chart.html): no script and no chart library, so the page works without
JavaScript and every bar carries its value as text.

One figure (a column of the report) is charted: a horizontal bar per period and series
(a combination of the breakdown's values), grouped by period, each labelled above its bar
with its value after it. A figure the national view hides is drawn as no bar and the words
for it ("fewer than 5"), never as 0; a rate or median with nothing to compute it from is
drawn as no bar and "no figure". Pure: the page hands in the reports API's JSON answer.
"""
from dataclasses import dataclass, field

WIDTH = 720
BAR_START = 8          # the bars' left edge
BAR_ROOM = 560         # the longest bar; the value's text goes after it
HEADING = 30           # a period's heading row
ROW = 40               # a bar's row: its label, then the bar
BAR_HEIGHT = 16
# the console's accent: 8:1 on the white page (WCAG AA asks 3:1 of a graphic)
BAR_COLOUR = "#0b4f8a"
FIGURES = ("count", "rate", "median")


@dataclass
class Bar:
    period: str
    label: str
    value: object        # the figure (None: hidden, or nothing to compute it from)
    hidden: bool         # the national view hid it (a small number, or what would give one back)
    y: float = 0.0
    width: float = 0.0


@dataclass
class Chart:
    figure: str
    kind: str
    bars: list = field(default_factory=list)
    headings: list = field(default_factory=list)   # (period, y)
    height: float = 0.0
    width: int = WIDTH
    bar_start: int = BAR_START
    bar_height: int = BAR_HEIGHT
    colour: str = BAR_COLOUR


def figure_columns(answer):
    """The report's figure columns (what can be charted), in the report's order."""
    return [column for column in answer["columns"] if column["kind"] in FIGURES]


def default_figure(answer):
    columns = figure_columns(answer)
    counts = [c for c in columns if c["kind"] == "count"]
    return (counts or columns)[0]["name"] if columns else None


def hidden_cells(answer):
    """(period, series key, column) of each cell the national view hid."""
    dimensions = [c["name"] for c in answer["columns"] if c["kind"] == "dimension"]
    return {(row["period"], tuple(row.get(d) for d in dimensions), column)
            for row in answer["rows"] for column in row.get("suppressed") or ()}


def chart(answer, figure):
    """The Chart of `figure` (a figure column's name) for a reports API JSON answer."""
    kind = next(c["kind"] for c in answer["columns"] if c["name"] == figure)
    dimensions = [c["name"] for c in answer["columns"] if c["kind"] == "dimension"]
    hidden = hidden_cells(answer)
    made = Chart(figure, kind)
    for at, period in enumerate(answer["periods"]):
        for series in answer["series"]:
            key = tuple(series["key"].get(d) for d in dimensions)
            made.bars.append(Bar(period, series["label"], series["values"][figure][at],
                                 (period, key, figure) in hidden))
    largest = max([b.value for b in made.bars if isinstance(b.value, (int, float))] + [1 if kind == "rate" else 0])
    y = 0.0
    for period in answer["periods"]:
        made.headings.append((period, y + 20))
        y += HEADING
        for bar in (b for b in made.bars if b.period == period):
            bar.y = y + 18
            if isinstance(bar.value, (int, float)) and largest > 0:
                bar.width = round(BAR_ROOM * bar.value / largest, 1)
            y += ROW
    made.height = y + 8
    return made
