"""Names shared by the API (which sends tasks) and the workers (which run them), and the names
workers give themselves."""

from __future__ import annotations

import os
import socket

PROCESS_TASK = "pixelfleet.process_task"
REDISPATCH_STALE_TASKS = "pixelfleet.redispatch_stale_tasks"
RECOVER_STALE_TASKS = "pixelfleet.recover_stale_tasks"
FAIL_OVERDUE_TASKS = "pixelfleet.fail_overdue_tasks"
PURGE_EXPIRED_FILES = "pixelfleet.purge_expired_files"
FORGET_EXPIRED_LOGINS = "pixelfleet.forget_expired_logins"
DELIVER_WEBHOOKS = "pixelfleet.deliver_webhooks"
SEND_MAIL = "pixelfleet.send_mail"

CELERY_WORKER_PREFIX = "celery@"


PRIORITIES = range(10)
"""A task's priority, 0-9: within its queue, a higher one is taken first (as in Kubernetes)."""
PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport: `queue`, `queue<sep>1`, ...


def broker_priority(priority: int) -> int:
    """The priority Celery's Redis transport is given: it takes its lists lowest number first,
    so a task's 9 (first) is its 0."""
    return max(PRIORITIES) - min(max(priority, min(PRIORITIES)), max(PRIORITIES))


def priority_lists(queue: str) -> list[str]:
    """The Redis lists that hold `queue`'s waiting messages, one per broker priority, in the
    order workers take them."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITIES]


def control_queue(queue: str) -> str:
    """The queue for upkeep and webhooks, so they never wait behind a backlog of images."""
    return f"{queue}.control"


def worker_host() -> str:
    """The host a worker names itself after: its pod (`POD_NAME`, from the downward API; the
    autoscaler maps busy workers to pods by it), else the machine's hostname."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def celery_worker_name() -> str:
    """This process's name as a task holder: host and pid, so a holder on this host can be
    checked for life."""
    return f"{CELERY_WORKER_PREFIX}{worker_host()}:{os.getpid()}"


def host_of(worker: str) -> str | None:
    """The host (pod) part of a Celery worker's name, or None for other names."""
    if not worker.startswith(CELERY_WORKER_PREFIX):
        return None
    host, _, pid = worker.removeprefix(CELERY_WORKER_PREFIX).rpartition(":")
    return host if host and pid.isdigit() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_stopped(holder: str) -> bool:
    """True when the Celery worker process `holder` provably stopped working on its task: it is
    this very process (which runs one task at a time, so it is not running that one), or a
    process on this host that no longer exists. Anything else is left to the recovery job."""
    me = celery_worker_name()
    if holder == me:
        return True
    if host_of(holder) != worker_host():
        return False
    return not _pid_alive(int(holder.rpartition(":")[2]))
