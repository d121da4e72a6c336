"""The subscriptions benchmark (tests/bench/bench_subscriptions.py) in a short mode, for what it
delivers, not how fast: records and subscriptions as processes, webhook receivers verifying
every signature, events fed through records' ledger, some receivers hanging in the second
phase. Every event reaches every healthy receiver once, in ledger order. Nothing here is
about time: the benchmark prints its figures when it is run on its own."""
from tests.bench.bench_subscriptions import figures, run

SUBSCRIBERS, HANGING = 6, 2


def test_every_event_reaches_every_healthy_subscriber_once_in_ledger_order(tmp_path):
    results = run(subscribers=SUBSCRIBERS, hanging=HANGING, rate=20, seconds=2, rounds=2, warmup=0, drain=60,
                  log_dir=str(tmp_path / "logs"), own_ferretdb=True, report=lambda *args: None)
    ledger = results["ledger"]
    assert results["complete"] and results["unverified"] == 0
    assert results["hung"] >= 2 * HANGING   # each hanging receiver held a request and never answered it
    assert [(phase.name, len(healthy)) for phase, healthy in results["segments"]] == [
        ("baseline", SUBSCRIBERS), ("hanging", SUBSCRIBERS - HANGING)] * 2

    for phase, healthy in results["segments"]:
        assert len(phase.cases) == 40 and all(case in ledger for case in phase.cases)
        wanted = sorted(ledger[case][0] for case in phase.cases)
        found = figures(phase, healthy, ledger)
        assert (found.delivered, found.missing, found.duplicates, found.out_of_order) == (
            len(wanted) * len(healthy), 0, 0, 0)
        for receiver in healthy:
            arrived = [(position, event_id) for position, event_id, _ in receiver.arrivals if position in wanted]
            assert [position for position, _ in arrived] == wanted     # once each, in ledger order
            assert [event_id for _, event_id in arrived] == [f"{receiver.subscription_id}.{p}" for p in wanted]
