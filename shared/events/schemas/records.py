"""Events the records service emits: none yet. The ledger records; it does not announce."""

SPECS = ()
