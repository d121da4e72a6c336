"""Small-number suppression for the national view's figures.

A national figure is de-identified already (national.py counts statistics that name no
case), but a small count can still point at a person: one hate-crime referral in a
region in a week is a case someone can recognise. So a count from 1 to SMALL - 1 is not
shown (0 is: it says nobody), and nothing from which it could be worked back is shown
either:
- a rate of a row with a count hidden (its numerator or denominator);
- the other part of a pair of counts that add up to one shown (completed and
  not_completed make outcomes_recorded): with one part hidden, the other is hidden too;
- a share across the rows of one period and region (processes' `share`), when any row of
  that group has its count hidden (the shares would give the hidden count back).

A hidden cell is None in the rows; each row says which of its cells were hidden
(`suppressed`, a sorted list of column names) and the CSV writes HIDDEN in them.
"""
from collections import defaultdict
from typing import NamedTuple

SMALL = 5
HIDDEN = "[c]"   # what the CSV shows for a hidden cell (the statistical convention: confidential)


class Rules(NamedTuple):
    counts: tuple              # columns holding counts
    rates: tuple = ()          # columns computed from the row's counts
    complements: tuple = ()    # pairs of count columns that add up to a count shown
    group_rates: tuple = ()    # columns shared across the rows of one period and region


RULES = {
    "referrals": Rules(counts=("referrals",)),
    "suitability": Rules(counts=("decisions",)),
    "closures": Rules(counts=("cases",)),
    "victims_code": Rules(counts=("announced_due", "missed")),
    "processes": Rules(counts=("cases",), group_rates=("share",)),
    "agreements": Rules(counts=("agreements_recorded", "outcomes_recorded", "completed", "not_completed"),
                        rates=("completion_rate",), complements=(("completed", "not_completed"),)),
    "satisfaction": Rules(counts=("answers",)),
}


def small(value, below=SMALL):
    return isinstance(value, int) and 0 < value < below


def suppress(name, rows, below=SMALL):
    """`rows` of national measure `name` with small numbers (and what would give them back)
    hidden: new rows, each with its `suppressed` columns listed."""
    rules = RULES[name]
    hidden_rows = []
    for row in rows:
        hidden = {column for column in rules.counts if small(row[column], below)}
        for pair in rules.complements:
            if hidden & set(pair):
                hidden |= set(pair)
        if hidden:
            hidden |= set(rules.rates)
        hidden_rows.append(hidden)
    if rules.group_rates:
        groups = defaultdict(bool)
        for row, hidden in zip(rows, hidden_rows):
            groups[(row["period"], row["region"])] |= bool(hidden)
        for row, hidden in zip(rows, hidden_rows):
            if groups[(row["period"], row["region"])]:
                hidden |= set(rules.group_rates)
    return [{**{column: (None if column in hidden else value) for column, value in row.items()},
             "suppressed": sorted(hidden)} for row, hidden in zip(rows, hidden_rows)]


def csv_rows(rows):
    """Suppressed rows as the CSV writes them: HIDDEN in each hidden cell, no `suppressed` column."""
    return [{column: (HIDDEN if column in row["suppressed"] else value)
             for column, value in row.items() if column != "suppressed"} for row in rows]
