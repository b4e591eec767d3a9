"""What an ImageJob shows, from its task: phases, durations, outputs, messages and conditions
(whose `lastTransitionTime` moves only when their status does); and the brief pipeline summary
`kubectl get imagejobs` prints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pixelfleet.events import TaskEvent
from pixelfleet.jobs.result_urls import ResultUrls
from pixelfleet.launchers.kubernetes import pipeline_summary
from pixelfleet.models import Task, TaskOutput
from pixelfleet.operator.status import (
    as_patch,
    differs,
    human_duration,
    rejected_status,
    status_of_task,
    status_patch_of_event,
)
from pixelfleet.settings import Settings
from tests.conftest import TEST_JWT_SECRET

STARTED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _task(status: str, **values: object) -> Task:
    task = Task(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status=status,
        progress=values.pop("progress", 0),
        stage=values.pop("stage", None),
        attempts=values.pop("attempts", 1),
        cost=3,
        pipeline={},
        source_key="sources/x",
        source_format="jpeg",
        source_width=10,
        source_height=10,
        source_bytes=100,
        outputs=values.pop("outputs", []),
        **values,
    )
    return task


def test_a_succeeded_task_shows_its_outputs_and_duration() -> None:
    output = TaskOutput(
        name="default",
        position=0,
        key="k",
        format="webp",
        content_type="image/webp",
        width=8,
        height=6,
        bytes=120,
        placeholder="LlEz=qs.bboz9VWYjGahb_X8f6ju",
        dominant_color="#468ccf",
    )
    task = _task(
        "succeeded",
        progress=100,
        stage="done",
        started_at=STARTED,
        finished_at=STARTED + timedelta(milliseconds=1420),
        outputs=[output],
        worker="celery@h:1",
    )

    status = as_patch(status_of_task(task, generation=1))

    assert status["phase"] == "Succeeded"
    assert status["taskId"] == str(task.id)
    assert (status["durationMs"], status["duration"]) == (1420, "1.4s")
    assert status["outputs"] == [
        {
            "name": "default",
            "format": "webp",
            "width": 8,
            "height": 6,
            "bytes": 120,
            "placeholder": "LlEz=qs.bboz9VWYjGahb_X8f6ju",
            "dominantColor": "#468ccf",
        }
    ]
    assert {(c["type"], c["status"]) for c in status["conditions"]} == {
        ("Admitted", "True"),
        ("Finished", "True"),
        ("Succeeded", "True"),
    }
    assert all(c["observedGeneration"] == 1 for c in status["conditions"])


def test_a_succeeded_tasks_outputs_carry_signed_urls_that_do_not_churn_the_status() -> None:
    output = TaskOutput(
        name="default",
        position=0,
        key="k",
        format="png",
        content_type="image/png",
        width=8,
        height=6,
        bytes=120,
    )
    task = _task("succeeded", progress=100, outputs=[output], finished_at=STARTED)
    urls = ResultUrls(Settings(jwt_secret=TEST_JWT_SECRET, public_url="https://img.example"))

    signed = as_patch(status_of_task(task, 1, None, urls))

    [written] = signed["outputs"]
    assert written["url"].startswith("https://img.example/v1/results/")
    assert urls.verify(written["url"].rsplit("/", 1)[1]).task_id == task.id
    # Signed again a moment later: the URL the job holds is as good, so nothing is written.
    assert not differs(signed, as_patch(status_of_task(task, 1, signed, urls)))
    # Once the URLs it holds are past half their lifetime, they are signed again.
    settings = Settings(jwt_secret=TEST_JWT_SECRET, result_url_ttl_seconds=3600)
    fresh, aging = ResultUrls(settings), ResultUrls(settings)
    old = as_patch(status_of_task(task, 1, None, aging))
    old["outputs"][0]["url"] = aging.url(task.id, "default", datetime.now(UTC) - timedelta(hours=1))
    assert differs(old, as_patch(status_of_task(task, 1, old, fresh)), fresh)
    assert not differs(signed, as_patch(status_of_task(task, 1, signed, urls)), urls)
    # A status written before the URLs existed gets them.
    unsigned = [{k: v for k, v in written.items() if k != "url"}]
    assert differs({**signed, "outputs": unsigned}, signed)


def test_a_rejected_job_says_why_and_is_finished_without_success() -> None:
    status = as_patch(
        rejected_status("BudgetExceeded", "This task costs 4 credits; 2 left.", 3, None)
    )

    assert status["phase"] == "Rejected"
    assert status["message"] == "BudgetExceeded: This task costs 4 credits; 2 left."
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Admitted": ("False", "BudgetExceeded"),
        "Finished": ("True", "Rejected"),
        "Succeeded": ("False", "Rejected"),
    }
    assert "taskId" not in status


def test_a_failed_task_says_why() -> None:
    task = _task(
        "failed",
        error_code="image-corrupt",
        error_message="The image is truncated.",
        started_at=STARTED,
        finished_at=STARTED + timedelta(seconds=2),
    )

    status = as_patch(status_of_task(task, generation=2))

    assert status["phase"] == "Failed"
    assert status["message"] == "image-corrupt: The image is truncated."
    assert ("Succeeded", "False") in {(c["type"], c["status"]) for c in status["conditions"]}


def test_a_job_that_outran_its_own_bounds_says_so_as_kubernetes_jobs_do() -> None:
    for code, reason in (
        ("deadline-exceeded", "DeadlineExceeded"),
        ("backoff-limit-exceeded", "BackoffLimitExceeded"),
    ):
        task = _task("failed", error_code=code, error_message="Past it.")
        conditions = {
            c["type"]: (c["status"], c["reason"])
            for c in as_patch(status_of_task(task, generation=1))["conditions"]
        }
        assert conditions["Succeeded"] == ("False", reason)
        assert conditions["Finished"] == ("True", reason)


def test_queued_and_running_tasks_are_not_finished() -> None:
    for task_status, phase in (("queued", "Queued"), ("running", "Running")):
        status = as_patch(status_of_task(_task(task_status), generation=1))
        assert status["phase"] == phase
        assert ("Finished", "False") in {(c["type"], c["status"]) for c in status["conditions"]}


def test_a_progress_event_patches_only_what_it_knows() -> None:
    event = TaskEvent(
        task_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status="running",
        progress=50,
        stage="op:resize",
        attempts=2,
        worker="celery@h:7",
    )
    assert status_patch_of_event(event) == {
        "phase": "Running",
        "progress": 50,
        "stage": "op:resize",
        "attempts": 2,
        "worker": "celery@h:7",
    }
    started = TaskEvent(
        task_id=event.task_id,
        user_id=event.user_id,
        status="running",
        progress=0,
        stage="starting",
        attempts=1,
        at=STARTED,
    )
    assert status_patch_of_event(started)["startedAt"] == STARTED.isoformat()


def test_a_status_that_already_says_it_all_is_left_alone() -> None:
    wanted = as_patch(status_of_task(_task("running", progress=40), generation=1))
    assert not differs(dict(wanted), wanted)
    assert differs({**wanted, "progress": 10}, wanted)
    assert differs(None, wanted)


def test_durations_read_like_kubectl_prints_them() -> None:
    assert human_duration(850) == "0.8s"
    assert human_duration(61_000) == "1m01s"
    assert human_duration(3_720_000) == "1h02m"


def test_the_pipeline_summary_names_operations_and_outputs() -> None:
    assert (
        pipeline_summary(
            {"operations": [{"op": "resize"}, {"op": "grayscale"}], "output": {"format": "webp"}}
        )
        == "resize,grayscale→webp"
    )
    assert (
        pipeline_summary(
            {
                "operations": [],
                "variants": [{"output": {"format": "jpeg"}}, {"output": {"format": "avif"}}],
            }
        )
        == "copy→jpeg+avif"
    )


def test_a_condition_keeps_its_transition_time_until_its_status_changes() -> None:
    queued = as_patch(status_of_task(_task("queued"), generation=1))
    # Written a while ago, as the ImageJob holds it now.
    earlier = "2026-11-25T12:00:00Z"
    conditions = [{**c, "lastTransitionTime": earlier} for c in queued["conditions"]]
    held = {**queued, "conditions": conditions}

    running = as_patch(status_of_task(_task("running", progress=40), 1, held))
    assert {c["type"]: c["lastTransitionTime"] for c in running["conditions"]} == {
        "Admitted": earlier,  # still True
        "Finished": earlier,  # still False
        "Succeeded": earlier,  # still Unknown
    }

    done = as_patch(status_of_task(_task("succeeded", progress=100), 1, held))
    moved = {
        c["type"]: c["lastTransitionTime"] for c in done["conditions"] if c["type"] != "Admitted"
    }
    assert earlier not in moved.values()  # both changed status: both moved
    assert all(datetime.fromisoformat(at) > STARTED for at in moved.values())
