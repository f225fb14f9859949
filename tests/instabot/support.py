"""Read `/metrics` the way Prometheus does: parsed by prometheus_client's own parser."""

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset[tuple[str, str]]]


def parse_metrics(text: str) -> dict[Sample, float]:
    """Every sample of the exposition, keyed by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Mapping[Sample, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}
