"""Can a stranger tell from the answer times who has an account?

Against a real `pixelfleet up` (limits off, so every request is timed): a login with a wrong
password for an email that has an account (the baseline) against one for an email that has none,
and a sign-up of a new email (the baseline) against one of an email already taken. The requests
alternate, so both sides see the same machine.

    uv run --group test python bench/auth_timing.py [--rounds 60] [--quick]

Prints a table of medians and spreads, then `ratio NAME VALUE` lines: the baseline's median over
the other's. 1.0 means the two cannot be told apart by their medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness.embedded import pixelfleet_up

PASSWORD = "benchmark password"


def timed(call: Callable[[], httpx.Response], expected: int) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    assert response.status_code == expected, response.text
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="4 rounds: a check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 4
    env = {"PIXELFLEET_RATE_LIMITS_ENABLED": "false"}
    with (
        tempfile.TemporaryDirectory() as tmp,
        pixelfleet_up(
            Path(tmp) / "data", env=env, workers=1, settled=not args.quick
        ) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):

        def register(email: str) -> httpx.Response:
            return http.post("/v1/auth/register", json={"email": email, "password": PASSWORD})

        def login(email: str) -> httpx.Response:
            form = {"username": email, "password": "not the password"}
            return http.post("/v1/auth/token", data=form)

        register("known@example.com")
        samples: dict[str, list[float]] = {
            "login, account exists": [],
            "login, no account": [],
            "sign-up, new email": [],
            "sign-up, taken email": [],
        }
        for _ in range(3):  # warm up both paths
            login("known@example.com")
            login("nobody@example.com")
        for i in range(args.rounds):
            samples["login, account exists"].append(timed(partial(login, "known@example.com"), 401))
            samples["login, no account"].append(timed(partial(login, f"x{i}@example.com"), 401))
            samples["sign-up, new email"].append(
                timed(partial(register, f"new{i}@example.com"), 202)
            )
            samples["sign-up, taken email"].append(
                timed(partial(register, "known@example.com"), 202)
            )

    print(f"{'request':<24} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8}")
    medians = {}
    for name, values in samples.items():
        deciles = statistics.quantiles(values, n=10)
        medians[name] = statistics.median(values)
        print(f"{name:<24} {medians[name]:>10.1f} {deciles[0]:>8.1f} {deciles[-1]:>8.1f}")
    login_ratio = medians["login, account exists"] / medians["login, no account"]
    signup_ratio = medians["sign-up, new email"] / medians["sign-up, taken email"]
    print(f"ratio login_known_vs_unknown {login_ratio:.3f}")
    print(f"ratio signup_new_vs_taken {signup_ratio:.3f}")


if __name__ == "__main__":
    main()
