"""How PixelFleet configures Celery, from the same settings as every other part."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery

from pixelfleet.settings import Settings
from pixelfleet.worker.names import (
    DELIVER_WEBHOOKS,
    FAIL_OVERDUE_TASKS,
    FORGET_EXPIRED_LOGINS,
    PRIORITIES,
    PRIORITY_SEPARATOR,
    PROCESS_TASK,
    PURGE_EXPIRED_FILES,
    RECOVER_STALE_TASKS,
    REDISPATCH_STALE_TASKS,
    SEND_MAIL,
    control_queue,
)


def _beat_schedule(settings: Settings) -> dict[str, dict[str, object]]:
    control = control_queue(settings.celery_queue)
    upkeep = settings.scheduler_interval_seconds

    def every(task: str, seconds: float) -> dict[str, object]:
        # `expires`: when no worker is up, beat's messages do not pile up for later.
        return {
            "task": task,
            "schedule": timedelta(seconds=seconds),
            "options": {"queue": control, "expires": max(seconds, 1.0)},
        }

    return {
        "redispatch-stale-tasks": every(
            REDISPATCH_STALE_TASKS, max(1.0, settings.redispatch_after_seconds / 2)
        ),
        "recover-stale-tasks": every(RECOVER_STALE_TASKS, upkeep),
        "fail-overdue-tasks": every(FAIL_OVERDUE_TASKS, upkeep),
        "purge-expired-files": every(PURGE_EXPIRED_FILES, upkeep),
        "forget-expired-logins": every(FORGET_EXPIRED_LOGINS, 3600.0),
        "deliver-webhooks": every(DELIVER_WEBHOOKS, settings.webhook_sweep_seconds),
        "send-mail": every(SEND_MAIL, upkeep),
    }


def create_celery(settings: Settings) -> Celery:
    queue = settings.celery_queue
    app = Celery("pixelfleet", broker=settings.resolved_redis_url, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        task_routes={
            PROCESS_TASK: {"queue": queue},
            "pixelfleet.*": {"queue": control_queue(queue)},
        },
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # A task is acknowledged when it is done, and given back if its worker dies mid-run;
        # the task code's claim makes a second run of a finished task a no-op.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The soft limit is the task code's own (it ends the pipeline's process, fails the task
        # and refunds it); this hard limit ends a pool process stuck beyond it anyway.
        task_time_limit=settings.task_time_limit_seconds,
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
            # One list per priority (names.priority_lists), taken in order.
            "priority_steps": list(PRIORITIES),
            "sep": PRIORITY_SEPARATOR,
        },
        broker_connection_retry_on_startup=True,
        # Publishing gives up quickly: the task is already queued in the database, and the
        # re-dispatch job sends it again once the broker is back.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # Task events on, so `celery events` and Flower follow the work (sent, received,
        # started, and how each ended) without a change to any worker.
        worker_send_task_events=True,
        task_send_sent_event=True,
        beat_schedule=_beat_schedule(settings),
    )
    return app
