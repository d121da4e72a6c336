"""A measure's rows as CSV: a header row of its columns, then one line per row.

An empty cell is a value there is nothing to compute from (a rate with no denominator, a
median of nothing). Every cell is a period label, a code from a closed vocabulary or a
number, so none can start a spreadsheet formula.
"""
import csv
import io


def to_csv(rows, columns):
    """`rows` (dicts with `columns` as keys) as CSV text, the header first."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="raise")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def measure_csv(measure, rows):
    """The CSV of a measure's rows (`measure`: a measures.Measure or national.Measure)."""
    return to_csv(rows, measure.columns)
