"""The standard RJ reports: a read model folded from the ledger's events (projection),
the measures computed from it by period and region (measures), their CSV form
(csv_export), and the measures the national view's de-identified statistics allow
(national). Pure: no I/O, no broker, no database. docs/reports.md defines each measure.
"""
