"""What counting reserved tasks buys the autoscaler, in a simulated worker pool.

A seeded, bursty arrival trace (a batch dumped at once, then minutes of steady traffic, then a
quiet gap with a trickle; service times log-normal around 4 s) is replayed against a
discrete-time simulation of one worker pool, once per policy, in the same run:

- ours: `desired_replicas` fed the true `QueueLoad` (the list, the reserved messages, the
  running tasks); on a scale-down idle replicas go first, as the operator marks them cheaper
  to delete (pod-deletion cost);
- list-only (KEDA-like): the same clamp, ceil, activation and stabilization window, but it sees
  only the list's length, `QueueLoad(waiting=list_len, reserved=0, running=0)`; on a scale-down
  Kubernetes picks replicas without knowing which are busy (the newest ones);
- and, to tell the two effects apart, ours without pod-deletion costs (the newest go first).

In every run each replica runs one task at a time and, like a Celery worker, reserves up to
`prefetch` messages, which leave the list (that is what fools a list-length scaler); a new
replica works only after a startup delay; the policy is polled every `pollSeconds`; not-ready
replicas are removed before ready ones, as the ReplicaSet controller does. A removed replica's
running task counts as interrupted (its work is lost) and, with its prefetched messages, goes
back to the front of the list (acks_late / warm shutdown re-queue them). Each run goes on after
the last arrival until every task is done and the pool is back to zero.

    uv run --locked --group test --group bench python bench/autoscale.py \
        [--seed N] [--minutes M] [--quick]

Prints a row per policy, then `ratio NAME VALUE` lines (list-only / ours, so above 1.0 means
ours is better): `interrupted_tasks_list_only_vs_ours` is (list_only + 1) / (ours + 1), so
that a run where ours interrupts nothing still gives a finite number;
`p95_wait_list_only_vs_ours` divides by at least one simulation step.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pixelfleet.autoscaling.policy import (
    PoolPolicy,
    QueueLoad,
    Recommendation,
    desired_replicas,
)

# The WorkerPool defaults (target 4, activation 1, 300 s window, 15 s polls), 20 replicas at
# most, Celery's default prefetch for one process (multiplier 4), and pods that take 30 s to
# pull, start and connect.
POLICY = PoolPolicy(
    min_replicas=0,
    max_replicas=20,
    target_tasks_per_replica=4,
    activation_tasks=1,
    scale_down_stabilization_seconds=300,
)
POLL_SECONDS = 15.0
STARTUP_SECONDS = 30.0
PREFETCH = 4
DRAIN_LIMIT_SECONDS = 3600.0


@dataclass(frozen=True)
class Arrival:
    at: float
    service: float


@dataclass
class Task:
    arrival: float
    service: float
    started: float = 0.0  # start of the current run


@dataclass
class Replica:
    created: float
    ready_at: float
    held: deque[Task] = field(default_factory=deque)  # reserved: the running one first
    busy_until: float | None = None


@dataclass
class Outcome:
    name: str
    total: int
    worker_seconds: float = 0.0
    interrupted: int = 0
    lost_work_seconds: float = 0.0
    waits: list[float] = field(default_factory=list)
    scale_changes: int = 0
    peak_replicas: int = 0
    finished_at: float = 0.0

    @property
    def completed(self) -> int:
        return len(self.waits)

    def wait_percentile(self, share: float) -> float:
        if not self.waits:
            return math.nan
        if len(self.waits) == 1:
            return self.waits[0]
        return statistics.quantiles(self.waits, n=100, method="inclusive")[round(share * 100) - 1]


def bursty_trace(rng: random.Random, minutes: float) -> list[Arrival]:
    """Bursts (a batch at once, then minutes of steady traffic) between quiet gaps."""

    def service() -> float:
        return min(60.0, max(0.5, rng.lognormvariate(math.log(4.0), 0.6)))

    end = minutes * 60
    arrivals: list[Arrival] = []
    t = rng.uniform(30, 120)
    while t < end:
        arrivals += [Arrival(t + rng.uniform(0, 5), service()) for _ in range(rng.randint(40, 250))]
        burst_end, rate = t + rng.uniform(3, 10) * 60, rng.uniform(0.8, 2.5)
        while (t := t + rng.expovariate(rate)) < burst_end:
            arrivals.append(Arrival(t, service()))
        quiet_end = t + rng.uniform(3, 8) * 60
        while (t := t + rng.expovariate(0.02)) < quiet_end:
            arrivals.append(Arrival(t, service()))
        t = quiet_end
    return sorted((a for a in arrivals if a.at < end), key=lambda a: a.at)


def simulate(
    name: str,
    trace: list[Arrival],
    *,
    sees_reserved: bool,
    idle_first: bool,
    step: float,
    seed: int,
) -> Outcome:
    outcome = Outcome(name, total=len(trace))
    order = random.Random(seed)  # which worker polls the broker first
    queue: deque[Task] = deque()
    replicas: list[Replica] = []
    history: tuple[Recommendation, ...] = ()
    next_arrival, next_poll, ticks = 0, 0.0, 0
    last_arrival = trace[-1].at if trace else 0.0
    while True:
        now = ticks * step
        while next_arrival < len(trace) and trace[next_arrival].at <= now:
            queue.append(Task(trace[next_arrival].at, trace[next_arrival].service))
            next_arrival += 1

        working = [r for r in replicas if r.ready_at <= now]
        order.shuffle(working)
        for replica in working:
            if replica.busy_until is not None and replica.busy_until <= now:
                done = replica.held.popleft()
                outcome.waits.append(done.started - done.arrival)
                replica.busy_until = None
            while len(replica.held) < PREFETCH and queue:
                replica.held.append(queue.popleft())
            if replica.busy_until is None and replica.held:
                replica.held[0].started = now
                replica.busy_until = now + replica.held[0].service

        if now >= next_poll:
            next_poll += POLL_SECONDS
            reserved = sum(len(r.held) for r in replicas)
            running = sum(r.busy_until is not None for r in replicas)
            load = (
                QueueLoad(waiting=len(queue), reserved=reserved, running=running)
                if sees_reserved
                else QueueLoad(waiting=len(queue), reserved=0, running=0)
            )
            decision = desired_replicas(POLICY, load, len(replicas), history, now)
            history = decision.history
            if decision.desired != len(replicas):
                outcome.scale_changes += 1
            while len(replicas) < decision.desired:
                replicas.append(Replica(created=now, ready_at=now + STARTUP_SECONDS))
            if decision.desired < len(replicas):
                replicas = scale_down(
                    replicas, decision.desired, now, queue, outcome, idle_first=idle_first
                )
            outcome.peak_replicas = max(outcome.peak_replicas, len(replicas))

        outcome.worker_seconds += len(replicas) * step
        drained = next_arrival == len(trace) and not queue and not replicas
        if drained or now > last_arrival + DRAIN_LIMIT_SECONDS:
            outcome.finished_at = now
            return outcome
        ticks += 1


def scale_down(
    replicas: list[Replica],
    keep: int,
    now: float,
    queue: deque[Task],
    outcome: Outcome,
    *,
    idle_first: bool,
) -> list[Replica]:
    """Removes replicas as the ReplicaSet controller ranks them: not ready first, then (with
    pod-deletion costs) idle before busy, then the newest."""

    def rank(replica: Replica) -> tuple[bool, bool, float]:
        busy = bool(replica.held) if idle_first else False
        return (replica.ready_at <= now, busy, -replica.created)

    ranked = sorted(replicas, key=rank)
    for removed in ranked[: len(replicas) - keep]:
        if removed.busy_until is not None:
            outcome.interrupted += 1
            outcome.lost_work_seconds += now - removed.held[0].started
        queue.extendleft(reversed(removed.held))
    return ranked[len(replicas) - keep :]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the trace")
    parser.add_argument("--quick", action="store_true", help="20 minutes, coarser steps")
    args = parser.parse_args()
    minutes = 20.0 if args.quick else args.minutes
    step = 0.25 if args.quick else 0.1

    trace = bursty_trace(random.Random(args.seed), minutes)
    work = sum(a.service for a in trace)
    started = time.perf_counter()
    ours = simulate("ours", trace, sees_reserved=True, idle_first=True, step=step, seed=args.seed)
    # Which part of the difference is the signal and which the choice of pods to delete.
    ours_newest_first = simulate(
        "ours, newest removed first",
        trace,
        sees_reserved=True,
        idle_first=False,
        step=step,
        seed=args.seed,
    )
    list_only = simulate(
        "list-only (KEDA-like)",
        trace,
        sees_reserved=False,
        idle_first=False,
        step=step,
        seed=args.seed,
    )
    elapsed = time.perf_counter() - started

    print(
        f"{len(trace)} tasks over {minutes:g} min (seed {args.seed}), {work:.0f} s of work; "
        f"max {POLICY.max_replicas} replicas, target {POLICY.target_tasks_per_replica}, "
        f"window {POLICY.scale_down_stabilization_seconds:g} s, poll {POLL_SECONDS:g} s, "
        f"startup {STARTUP_SECONDS:g} s, prefetch {PREFETCH}, step {step:g} s "
        f"({elapsed:.1f} s to simulate)"
    )
    header = (
        f"{'policy':34} {'worker-s':>9} {'useful':>7} {'interrupted':>11} {'lost s':>7} "
        f"{'wait p50':>8} {'p95 s':>7} {'completed':>10} {'scalings':>8} {'peak':>5}"
    )
    print(header)
    for outcome in (ours, ours_newest_first, list_only):
        print(
            f"{outcome.name:34} {outcome.worker_seconds:9.0f} "
            f"{work / outcome.worker_seconds:7.1%} {outcome.interrupted:11d} "
            f"{outcome.lost_work_seconds:7.0f} {outcome.wait_percentile(0.50):8.1f} "
            f"{outcome.wait_percentile(0.95):7.1f} "
            f"{f'{outcome.completed}/{outcome.total}':>10} {outcome.scale_changes:8d} "
            f"{outcome.peak_replicas:5d}"
        )
    print("(ours: the true load, idle pods deleted first; ours, newest removed first: the same")
    print(" signal without pod-deletion costs; useful: service seconds / worker-seconds; lost s:")
    print(
        " work thrown away by interruptions; wait: arrival to the start of the run that succeeded)"
    )
    print(
        "ratio interrupted_tasks_list_only_vs_ours "
        f"{(list_only.interrupted + 1) / (ours.interrupted + 1):.3f}"
    )
    ours_p95 = max(ours.wait_percentile(0.95), step)
    print(f"ratio p95_wait_list_only_vs_ours {list_only.wait_percentile(0.95) / ours_p95:.3f}")


if __name__ == "__main__":
    main()
