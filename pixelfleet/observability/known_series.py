"""Every series of a labelled metric whose label values are known in advance, made (at 0) when a
process starts: the first scrape has them, so `rate()` reads 0 rather than nothing, and an alert
on a series that has never moved can fire the first time it does. Labels whose values come from
traffic (routes, queues, pools) appear as they are used."""

from __future__ import annotations

from typing import get_args

from pixelfleet.credits.schemas import EntryKind
from pixelfleet.imaging.formats import AUTO, OUTPUT_FORMATS
from pixelfleet.imaging.operations import OPERATIONS
from pixelfleet.jobs.stage_clock import DECODE_STEP
from pixelfleet.jobs.states import FINAL_STATES
from pixelfleet.mail.letters import KINDS as LETTER_KINDS
from pixelfleet.mail.outbox import MAIL_OUTCOMES
from pixelfleet.observability.metrics import (
    BYTES_PRODUCED,
    CREDITS,
    ENCODE_SECONDS,
    MAIL_ATTEMPTS,
    OPERATION_SECONDS,
    OPERATOR_ERRORS,
    OPERATOR_RECONCILES,
    PAYMENTS,
    TASK_RUN_SECONDS,
    TASKS_FINISHED,
    WEBHOOK_DELIVERIES,
)
from pixelfleet.operator.telemetry import HANDLERS
from pixelfleet.payments.schemas import PaymentStatus
from pixelfleet.webhooks.delivery import DELIVERY_OUTCOMES


def declare() -> None:
    """Makes every known series of this process (idempotent)."""
    for outcome in sorted(FINAL_STATES):
        TASKS_FINISHED.labels(outcome)
        TASK_RUN_SECONDS.labels(outcome)
    for written in OUTPUT_FORMATS:
        BYTES_PRODUCED.labels(written)
    for encoded in [*OUTPUT_FORMATS, AUTO]:
        ENCODE_SECONDS.labels(encoded)
    for step in [DECODE_STEP, *OPERATIONS]:
        OPERATION_SECONDS.labels(step)
    for kind in get_args(EntryKind):
        CREDITS.labels(kind)
    for state in get_args(PaymentStatus):
        PAYMENTS.labels(state)
    for outcome in DELIVERY_OUTCOMES:
        WEBHOOK_DELIVERIES.labels(outcome)
    for kind in LETTER_KINDS:
        for outcome in MAIL_OUTCOMES:
            MAIL_ATTEMPTS.labels(kind, outcome)
    for resource, handlers in HANDLERS.items():
        for handler in handlers:
            OPERATOR_RECONCILES.labels(resource, handler)
            OPERATOR_ERRORS.labels(resource, handler)
