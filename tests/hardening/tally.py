"""What the hardening tests actually tried, across their modules: each attack sent, each answer
that was a server error, each credit that went missing. `tests/conftest.py` prints the line
`hardening: N attacks tried, E server errors, C credits lost` at the end of the run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Tally:
    tried: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    credits_lost: int = 0

    def attack(self, kind: str, name: str, response: httpx.Response) -> httpx.Response:
        """Counts one attack of `kind` and whether its answer was a server error."""
        self.answered(kind, name, response.status_code)
        return response

    def answered(self, kind: str, name: str, status: int) -> None:
        self.tried[kind] += 1
        if status >= 500:
            self.server_errors.append(f"{kind}: {name} -> {status}")

    def as_dict(self) -> dict[str, object]:
        """What a test process tried, to hand to the process that reports (pytest-xdist)."""
        return {
            "tried": dict(self.tried),
            "server_errors": list(self.server_errors),
            "credits_lost": self.credits_lost,
        }

    def add(self, other: dict[str, Any]) -> None:
        """Adds what another test process tried (`as_dict`'s answer)."""
        self.tried.update(other["tried"])
        self.server_errors.extend(other["server_errors"])
        self.credits_lost += other["credits_lost"]

    def line(self) -> str:
        return (
            f"hardening: {sum(self.tried.values())} attacks tried, "
            f"{len(self.server_errors)} server errors, {self.credits_lost} credits lost"
        )


TALLY = Tally()
