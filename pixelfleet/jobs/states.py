"""The task state machine: queued -> running -> succeeded | failed | cancelled."""

from __future__ import annotations

from typing import Literal

TaskStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]

QUEUED: TaskStatus = "queued"
RUNNING: TaskStatus = "running"
SUCCEEDED: TaskStatus = "succeeded"
FAILED: TaskStatus = "failed"
CANCELLED: TaskStatus = "cancelled"

FINAL_STATES: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})
ALL_STATES: tuple[TaskStatus, ...] = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
