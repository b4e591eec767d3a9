"""The scaling policy, specified by properties over generated policies, loads, replica counts,
histories and times, then by a few worked examples.

Generated policies keep `maxReplicas >= 1`, as the WorkerPool schema does; generated histories
hold recommendations the same policy could have made (within [minReplicas, maxReplicas])."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelfleet.autoscaling.policy import (
    PoolPolicy,
    QueueLoad,
    Recommendation,
    desired_replicas,
    recommended_replicas,
)

pytestmark = pytest.mark.autoscaling

# Deterministic: the same examples on every run and every machine, no example database.
specification = settings(max_examples=250, deadline=None, derandomize=True, database=None)

WINDOWS = st.sampled_from([0.0, 15.0, 60.0, 300.0]) | st.floats(0.0, 900.0)
NOW = st.floats(0.0, 1e7)


@st.composite
def policies(draw: st.DrawFn, min_replicas: int | None = None) -> PoolPolicy:
    max_replicas = draw(st.integers(1, 30))
    if min_replicas is None:
        min_replicas = draw(st.integers(0, min(max_replicas, 5)) | st.just(max_replicas))
    return PoolPolicy(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_tasks_per_replica=draw(st.integers(1, 12)),
        activation_tasks=draw(st.integers(0, 30)),
        scale_down_stabilization_seconds=draw(WINDOWS),
    )


def loads(
    waiting: st.SearchStrategy[int] = st.integers(0, 400),
    reserved: st.SearchStrategy[int] = st.integers(0, 150),
    running: st.SearchStrategy[int] = st.integers(0, 150),
) -> st.SearchStrategy[QueueLoad]:
    return st.builds(QueueLoad, waiting=waiting, reserved=reserved, running=running)


CURRENT = st.integers(0, 40)  # may exceed maxReplicas: someone scaled the Deployment by hand


@st.composite
def histories(draw: st.DrawFn, policy: PoolPolicy, now: float) -> tuple[Recommendation, ...]:
    """Past recommendations, oldest first, some inside the window and some older."""
    reach = 2 * policy.scale_down_stabilization_seconds + 60
    ages = draw(st.lists(st.floats(0.0, reach), max_size=12))
    return tuple(
        Recommendation(
            at=now - age,
            replicas=draw(st.integers(policy.min_replicas, policy.max_replicas)),
        )
        for age in sorted(ages, reverse=True)
    )


@st.composite
def situations(
    draw: st.DrawFn,
    policy: st.SearchStrategy[PoolPolicy] | None = None,
    load: st.SearchStrategy[QueueLoad] | None = None,
    current: st.SearchStrategy[int] = CURRENT,
) -> tuple[PoolPolicy, QueueLoad, int, tuple[Recommendation, ...], float]:
    chosen = draw(policy if policy is not None else policies())
    now = draw(NOW)
    return (
        chosen,
        draw(load if load is not None else loads()),
        draw(current),
        draw(histories(chosen, now)),
        now,
    )


Situation = tuple[PoolPolicy, QueueLoad, int, tuple[Recommendation, ...], float]


def clamp(value: int, policy: PoolPolicy) -> int:
    return max(policy.min_replicas, min(policy.max_replicas, value))


def within_window(history: tuple[Recommendation, ...], policy: PoolPolicy, now: float) -> list[int]:
    return [r.replicas for r in history if now - r.at < policy.scale_down_stabilization_seconds]


# ------------------------------------------------------------------------------- properties


@specification
@given(situations())
def test_the_decision_is_always_within_min_and_max_replicas(situation: Situation) -> None:
    policy, load, current, history, now = situation
    decision = desired_replicas(policy, load, current, history, now)
    assert policy.min_replicas <= decision.desired <= policy.max_replicas
    assert policy.min_replicas <= decision.recommended <= policy.max_replicas


@specification
@given(
    situations(
        load=st.one_of(loads(reserved=st.integers(1, 150)), loads(running=st.integers(1, 150)))
    )
)
def test_a_pool_is_never_scaled_to_zero_while_a_task_is_reserved_or_running(
    situation: Situation,
) -> None:
    policy, load, current, history, now = situation
    assert desired_replicas(policy, load, current, history, now).desired >= 1


@specification
@given(situations())
def test_scaling_up_follows_the_recommendation_at_once(situation: Situation) -> None:
    policy, load, current, history, now = situation
    recommended = recommended_replicas(policy, load, current)
    decision = desired_replicas(policy, load, current, history, now)
    assert decision.recommended == recommended
    if recommended > current:
        assert decision.desired == recommended


@specification
@given(situations())
def test_scaling_down_holds_the_highest_recommendation_of_the_window_and_never_grows(
    situation: Situation,
) -> None:
    policy, load, current, history, now = situation
    decision = desired_replicas(policy, load, current, history, now)
    if decision.recommended < current:
        busiest = max([*within_window(history, policy, now), decision.recommended])
        assert decision.desired <= current
        assert decision.desired >= min(current, busiest)
        # ...and no further: recommendations older than the window are forgotten.
        assert decision.desired == max(min(current, busiest), decision.recommended)


@specification
@given(situations())
def test_the_history_returned_is_the_window_plus_this_recommendation(
    situation: Situation,
) -> None:
    policy, load, current, history, now = situation
    decision = desired_replicas(policy, load, current, history, now)
    assert decision.history[-1] == Recommendation(now, decision.recommended)
    assert [r.replicas for r in decision.history[:-1]] == within_window(history, policy, now)


@specification
@given(data=st.data(), sleeping_policy=policies(min_replicas=0))
def test_a_pool_at_zero_sleeps_below_activation_tasks_and_wakes_when_it_is_reached(
    data: st.DataObject, sleeping_policy: PoolPolicy
) -> None:
    policy = sleeping_policy
    now = data.draw(NOW)
    history = data.draw(histories(policy, now))
    waiting = data.draw(st.integers(0, 400))
    decision = desired_replicas(policy, QueueLoad(waiting, 0, 0), 0, history, now)
    if waiting < policy.activation_tasks or waiting == 0:
        assert decision.desired == 0
    else:
        wanted = math.ceil(waiting / policy.target_tasks_per_replica)
        assert decision.desired == min(policy.max_replicas, wanted) >= 1


@specification
@given(
    situations(load=st.just(QueueLoad(0, 0, 0))),
    st.floats(1.0, 120.0),
)
def test_an_idle_pool_reaches_min_replicas_within_the_window_and_stays_there(
    situation: Situation, poll_seconds: float
) -> None:
    policy, load, current, history, start = situation
    initial, now, decisions = current, start, []
    settled_by = start + policy.scale_down_stabilization_seconds + poll_seconds
    while now <= settled_by + 3 * poll_seconds:
        decision = desired_replicas(policy, load, current, history, now)
        decisions.append(decision.desired)
        current, history = decision.desired, decision.history
        now += poll_seconds
    assert decisions[-1] == policy.min_replicas
    # It gets there without ever going back up (a pool below the minimum is lifted to it first).
    assert decisions[0] <= max(initial, policy.min_replicas)
    assert decisions == sorted(decisions, reverse=True)
    assert all(d == policy.min_replicas for d in decisions[-3:])


@specification
@given(
    policies(),
    st.integers(1, 400),
    st.floats(0.0, 1.0),
    st.data(),
)
def test_reserved_tasks_keep_their_replicas_when_the_queue_list_is_empty(
    policy: PoolPolicy, reserved: int, running_share: float, data: st.DataObject
) -> None:
    """A list-length scaler would see 0 here and scale the busy pool down."""
    load = QueueLoad(waiting=0, reserved=reserved, running=int(reserved * running_share))
    needed = clamp(math.ceil(reserved / policy.target_tasks_per_replica), policy)
    now = data.draw(NOW)
    history = data.draw(histories(policy, now))
    assert recommended_replicas(policy, load, needed) == needed
    assert desired_replicas(policy, load, needed, history, now).desired == needed


# ---------------------------------------------------------------------------- worked examples

FIVE_PER_REPLICA = PoolPolicy(min_replicas=0, max_replicas=10, target_tasks_per_replica=5)


def test_a_backlog_of_23_at_5_per_replica_asks_for_5_replicas() -> None:
    decision = desired_replicas(FIVE_PER_REPLICA, QueueLoad(23, 0, 0), 1, (), now=0.0)
    assert (decision.desired, decision.recommended) == (5, 5)
    assert decision.reason == "backlog 23 needs 5"


def test_reserved_tasks_count_in_the_backlog_alongside_waiting_ones() -> None:
    load = QueueLoad(waiting=3, reserved=20, running=4)
    assert load.backlog == 23
    assert desired_replicas(FIVE_PER_REPLICA, load, 5, (), now=0.0).desired == 5


def test_running_tasks_the_transport_no_longer_sees_count_too() -> None:
    load = QueueLoad(waiting=0, reserved=2, running=11)  # messages acknowledged early
    assert load.in_flight == 11
    assert recommended_replicas(FIVE_PER_REPLICA, load, 3) == 3


def test_a_huge_backlog_is_capped_at_max_replicas() -> None:
    assert desired_replicas(FIVE_PER_REPLICA, QueueLoad(5000, 0, 0), 2, (), 0.0).desired == 10


def test_min_replicas_are_kept_with_an_empty_queue() -> None:
    policy = PoolPolicy(min_replicas=2, max_replicas=10, target_tasks_per_replica=5)
    assert desired_replicas(policy, QueueLoad(0, 0, 0), 0, (), 0.0).desired == 2


def test_a_sleeping_pool_wakes_only_at_activation_tasks() -> None:
    policy = PoolPolicy(0, 10, target_tasks_per_replica=4, activation_tasks=10)
    assert desired_replicas(policy, QueueLoad(9, 0, 0), 0, (), 0.0).desired == 0
    assert desired_replicas(policy, QueueLoad(10, 0, 0), 0, (), 0.0).desired == 3


def test_activation_does_not_apply_to_a_pool_that_is_awake() -> None:
    policy = PoolPolicy(0, 10, target_tasks_per_replica=4, activation_tasks=10)
    assert desired_replicas(policy, QueueLoad(3, 0, 0), 1, (), 0.0).desired == 1


def test_a_task_in_flight_wakes_a_pool_at_zero_whatever_the_activation() -> None:
    policy = PoolPolicy(0, 10, target_tasks_per_replica=4, activation_tasks=10)
    assert desired_replicas(policy, QueueLoad(0, 1, 0), 0, (), 0.0).desired == 1


def test_a_scale_down_waits_out_the_stabilization_window() -> None:
    policy = PoolPolicy(0, 10, target_tasks_per_replica=4, scale_down_stabilization_seconds=300)
    busy = desired_replicas(policy, QueueLoad(32, 0, 0), 2, (), now=0.0)
    assert busy.desired == 8
    quiet = QueueLoad(4, 0, 0)
    held = desired_replicas(policy, quiet, 8, busy.history, now=299.0)
    assert held.desired == 8
    assert "holding 8 for the 300s window" in held.reason
    released = desired_replicas(policy, quiet, 8, held.history, now=300.0)
    assert released.desired == 1


def test_a_scale_down_stops_at_the_busiest_moment_still_in_the_window() -> None:
    policy = PoolPolicy(0, 10, target_tasks_per_replica=1, scale_down_stabilization_seconds=60)
    history = (Recommendation(0.0, 9), Recommendation(30.0, 6), Recommendation(50.0, 4))
    decision = desired_replicas(policy, QueueLoad(2, 0, 0), 9, history, now=70.0)
    assert decision.desired == 6
    assert [r.replicas for r in decision.history] == [6, 4, 2]


def test_the_last_busy_replica_is_kept_while_its_task_runs() -> None:
    policy = PoolPolicy(0, 10, target_tasks_per_replica=4, scale_down_stabilization_seconds=0)
    decision = desired_replicas(policy, QueueLoad(0, 0, 1), 3, (), 0.0)
    assert decision.desired == 1
    idle = desired_replicas(policy, QueueLoad(0, 0, 0), 1, decision.history, 15.0)
    assert idle.desired == 0


def test_a_pool_given_no_room_stays_empty_even_with_work_in_flight() -> None:
    closed = PoolPolicy(min_replicas=0, max_replicas=0, target_tasks_per_replica=4)
    busy = QueueLoad(waiting=0, reserved=1, running=0)
    assert desired_replicas(closed, busy, 0, (), 0.0).desired == 0
    remembered = (Recommendation(-10.0, 3),)
    assert desired_replicas(closed, QueueLoad(0, 0, 0), 3, remembered, 0.0).desired == 0


def test_the_window_holds_replicas_only_up_to_todays_maximum() -> None:
    lowered = PoolPolicy(min_replicas=0, max_replicas=2, target_tasks_per_replica=4)
    decision = desired_replicas(lowered, QueueLoad(0, 0, 0), 5, (Recommendation(-10.0, 9),), 0.0)
    assert decision.desired == 2
    assert "holding 2" in decision.reason
