"""Reads a `/metrics` endpoint as Prometheus does, so tests compare what it says before and
after a workload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

SeriesKey = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Scrape:
    series: dict[SeriesKey, float]

    @classmethod
    def of(cls, url: str) -> Scrape:
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return cls.parse(response.text)

    @classmethod
    def parse(cls, text: str) -> Scrape:
        series: dict[SeriesKey, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                series[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(series)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A series' value (0 when it does not exist yet)."""
        return self.series.get((name, frozenset((labels or {}).items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(
            value
            for (series_name, series_labels), value in self.series.items()
            if series_name == name and wanted <= series_labels
        )

    def label_values(self, name: str, label: str) -> set[str]:
        return {
            dict(labels)[label]
            for series_name, labels in self.series
            if series_name == name and label in dict(labels)
        }

    def missing(self, expected: Mapping[str, Mapping[str, list[str]]]) -> list[str]:
        """Of the series `expected` names (each metric's label and its values, one series per
        value), the ones this scrape lacks."""
        return [
            f"{name}{{{label}={value!r}}}"
            for name, by_label in expected.items()
            for label, values in by_label.items()
            for value in values
            if not any(
                series_name == name and (label, value) in labels
                for series_name, labels in self.series
            )
        ]

    def count(self, name: str) -> int:
        return sum(1 for series_name, _ in self.series if series_name == name)


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.total(name, **labels) - before.total(name, **labels)
