"""The `data` schemas of the events, one module per producing service.

Each module lists its events in `SPECS`; `shared.events.catalogue` gathers them.
"""
