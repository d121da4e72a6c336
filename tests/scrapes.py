"""A scrape of `/metrics` read the way Prometheus reads it (prometheus_client.parser), for
tests that watch a counter move."""
import re

import requests
from prometheus_client.parser import text_string_to_metric_families

# what an id in the tests' data looks like: a UUID, or a long run of hex
ID_LIKE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}", re.I)


class Scrape:
    def __init__(self, text):
        self.text = text
        self.samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]

    @classmethod
    def of(cls, url):
        """A scrape of the service at `url`."""
        answer = requests.get(f"{url}/metrics", timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("text/plain"), answer.headers["Content-Type"]
        return cls(answer.text)

    def value(self, name, **labels):
        """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
        return sum(s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items())

    def has(self, name, **labels):
        return any(s.name == name and labels.items() <= s.labels.items() for s in self.samples)

    def label_values(self, prefix="amends_"):
        """Every label value of the samples whose names start with `prefix`."""
        return {value for s in self.samples if s.name.startswith(prefix) for value in s.labels.values()}


def moved(before, after, name, **labels):
    """How far a sample moved between two scrapes."""
    return after.value(name, **labels) - before.value(name, **labels)


def assert_no_ids(scrape, ids):
    """No label value of ours holds any of `ids` (the test's case, participant and event ids,
    and personal data), or anything shaped like an id."""
    values = scrape.label_values()
    assert values, "the scrape has no labelled amends_ samples to judge"
    for value in values:
        assert not ID_LIKE.search(value), f"a label value looks like an id: {value!r}"
        for known in ids:
            assert str(known) not in value, f"a label value holds {known!r}: {value!r}"
