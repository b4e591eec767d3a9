"""The custom resources, in one place: Pydantic models of their spec and status (used by the
API's launcher to create them, by the operator to read and patch them) and the CRD manifests
generated from those models (the chart's `crds/` files are checked against them by a test)."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from pixelfleet.outbound import MAX_URL_LENGTH
from pixelfleet.sources.schemas import SOURCE_KINDS, Source, SourceKind

GROUP = "pixelfleet.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

IMAGEJOB_KIND = "ImageJob"
IMAGEJOB_PLURAL = "imagejobs"
IMAGEJOB_SINGULAR = "imagejob"
IMAGEJOB_SHORT_NAMES = ("ij",)

CREDITBINDING_KIND = "CreditBinding"
CREDITBINDING_PLURAL = "creditbindings"
CREDITBINDING_SINGULAR = "creditbinding"
CREDITBINDING_SHORT_NAMES = ("cb",)

WORKERPOOL_KIND = "WorkerPool"
WORKERPOOL_PLURAL = "workerpools"
WORKERPOOL_SINGULAR = "workerpool"
WORKERPOOL_SHORT_NAMES = ("wp",)

Phase = Literal[
    "Pending", "Queued", "Running", "Succeeded", "Failed", "Cancelled", "Rejected"
]
FINISHED_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Cancelled", "Rejected"})
DEFAULT_TTL_SECONDS_AFTER_FINISHED = 3600
FINALIZER = f"{GROUP}/cancel-task"
"""The operator's finalizer on an ImageJob: its deletion cancels the task before it goes."""
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_PIXELFLEET = "pixelfleet"
"""The label of the ImageJobs PixelFleet makes (`task-<id>`), not those applied by hand."""
REQUEST_ID_ANNOTATION = f"{GROUP}/request-id"
"""The id of the API request that submitted an ImageJob's task, so the operator's log lines
(and the Celery message it sends) carry it too."""


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ImageSource(_Camel):
    """The job's image. A job PixelFleet made says where its task's image is stored and what
    its header said; a job applied by hand names one source as the API takes it (`url`, or the
    id of an `asset`, `upload` or earlier `task` of the bound account)."""

    key: str | None = Field(
        default=None, min_length=1, max_length=255, description="Storage key of the image."
    )
    content_type: str | None = Field(default=None, max_length=64, description="Its media type.")
    bytes: int | None = Field(default=None, ge=0, description="Size of the image in bytes.")
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    kind: SourceKind | None = Field(
        default=None,
        description="How the image came: `file` (uploaded with the task), `url` (fetched once, "
        "by the API), `upload` (a direct upload), `task` (an earlier task's source) or `asset`.",
    )
    url: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="An http(s) URL of the image (a job applied by hand: fetched once, when "
        "it is admitted).",
    )
    asset: str | None = Field(default=None, max_length=64, description="An asset's id.")
    upload: str | None = Field(default=None, max_length=64, description="A direct upload's id.")
    task: str | None = Field(default=None, max_length=64, description="An earlier task's id.")

    def stored(self) -> bool:
        return self.key is not None

    def requested(self) -> Source:
        """The one source a job applied by hand names, as the API would read it."""
        named = {kind: getattr(self, kind) for kind in SOURCE_KINDS if getattr(self, kind)}
        described = self.model_dump(exclude_none=True, exclude=set(SOURCE_KINDS))
        if len(named) != 1 or described:
            raise ValueError(
                "source must name exactly one of url, asset, upload or task, and nothing else"
            )
        ((kind, value),) = named.items()
        return SOURCE_KINDS[kind].model_validate({kind: value})


class ImageJobSpec(_Camel):
    """An ImageJob is made by PixelFleet for a task submitted through the API (`taskId`,
    `userId`, the stored source), or applied by hand (`kubectl apply`): then it names a source
    and a pipeline, and the operator admits it for the account the namespace's CreditBinding
    names, or rejects it."""

    task_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The task's id in PixelFleet (also the Celery task id); unset in a job "
        "applied by hand (its task's id is then `status.taskId`).",
    )
    user_id: str | None = Field(
        default=None, max_length=64, description="The account that submitted the task."
    )
    source: ImageSource
    pipeline: dict[str, Any] = Field(
        description="The pipeline (operations, output or variants; or {\"preset\": NAME}), "
        "as the API takes it."
    )
    ops: str = Field(
        default="", max_length=128, description="The pipeline in brief, e.g. 'resize→webp'."
    )
    queue: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="The Celery queue the work is sent to (unset: the operator's own).",
    )
    priority: int = Field(
        default=0, ge=0, le=9, description="Within its queue, a higher priority runs first."
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Seconds from admission after which the job fails (DeadlineExceeded).",
    )
    backoff_limit: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="Attempts after the first before the job fails (BackoffLimitExceeded); "
        "unset: the service's own limit.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=DEFAULT_TTL_SECONDS_AFTER_FINISHED,
        ge=0,
        description="Seconds after the job finishes before it is deleted (the database keeps "
        "the task's history); unset keeps it.",
    )

    @model_validator(mode="after")
    def _one_kind_of_job(self) -> ImageJobSpec:
        if self.task_id is not None:
            if not self.source.stored() or self.user_id is None:
                raise ValueError("a job with a taskId also names userId and its stored source")
        else:
            if self.user_id is not None:
                raise ValueError("userId is set by PixelFleet, not in a job applied by hand")
            self.source.requested()  # exactly one source
        return self

    @property
    def applied_by_hand(self) -> bool:
        return self.task_id is None


class Output(_Camel):
    name: str
    format: str
    width: int
    height: int
    bytes: int
    url: str | None = Field(
        default=None, description="A signed URL of the result, readable without a credential."
    )
    placeholder: str | None = Field(
        default=None,
        description="When the output asked for one: its BlurHash or ThumbHash (base64) string.",
    )
    dominant_color: str | None = Field(
        default=None, description="With a placeholder: the image's most common colour, #rrggbb."
    )


class Condition(_Camel):
    """A Kubernetes-style condition (`Ready`, `Succeeded`, `Failed`)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class ImageJobStatus(_Camel):
    phase: Phase = "Pending"
    task_id: str | None = Field(default=None, description="The task's id in PixelFleet.")
    progress: int = Field(default=0, ge=0, le=100)
    stage: str | None = None
    attempts: int = Field(default=0, ge=0)
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = Field(default=None, ge=0)
    duration: str | None = Field(default=None, description="durationMs for people: '1.4s'.")
    outputs: list[Output] = Field(default_factory=list)
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None


class CreditBindingSpec(_Camel):
    """Binds a namespace to a PixelFleet account: ImageJobs applied in the namespace are
    charged to it, within the budget."""

    account_email: str = Field(
        min_length=3, max_length=320, description="The email of the account to charge."
    )
    budget_credits: int = Field(
        ge=0, description="At most this many credits spent by the namespace's jobs (charged "
        "minus refunded)."
    )


class CreditBindingStatus(_Camel):
    spent_credits: int = Field(default=0, description="Charged minus refunded, so far.")
    admitted_jobs: int = Field(default=0, ge=0, description="Jobs admitted under the binding.")
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None


class WorkerPoolSpec(_Camel):
    """A worker Deployment the operator scales from its Celery queue's backlog."""

    deployment: str = Field(min_length=1, max_length=253, description="The worker Deployment.")
    queue: str = Field(default="pixelfleet", min_length=1, max_length=64)
    min_replicas: int = Field(default=0, ge=0, description="0 lets an idle pool sleep.")
    max_replicas: int = Field(default=10, ge=1)
    target_tasks_per_replica: int = Field(
        default=4, ge=1, description="Backlog (waiting + reserved) one replica should carry."
    )
    activation_tasks: int = Field(
        default=1, ge=0, description="Backlog that wakes a pool scaled to zero."
    )
    scale_down_stabilization_seconds: int = Field(default=300, ge=0)
    poll_seconds: float = Field(default=15.0, gt=0, le=3600)


class Recommended(_Camel):
    at: float
    replicas: int


class WorkerPoolStatus(_Camel):
    backlog: int = 0
    waiting: int = 0
    reserved: int = 0
    running: int = 0
    desired_replicas: int = 0
    current_replicas: int = 0
    last_scale_time: datetime | None = None
    reason: str = ""
    recommendations: list[Recommended] = Field(
        default_factory=list, description="Recent recommendations (the stabilization window)."
    )
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None


def imagejob_name(task_id: str) -> str:
    return f"task-{task_id}"


def imagejob_of(task_id: uuid.UUID, resource_name: str | None) -> tuple[str | None, str]:
    """The namespace (None: PixelFleet's own) and name of a task's ImageJob: the one applied by
    hand that asked for it (`namespace/name`), else the `task-<id>` PixelFleet made."""
    if resource_name and "/" in resource_name:
        namespace, name = resource_name.split("/", 1)
        return namespace, name
    return None, imagejob_name(str(task_id))


# ---------------------------------------------------------------------- the generated manifests


def _structural(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """Pydantic's JSON Schema made structural, as Kubernetes wants it: references inlined,
    `X | None` as `nullable`, titles gone, free-form objects marked as such."""
    if "$ref" in schema:
        target = definitions[schema["$ref"].rsplit("/", 1)[-1]]
        merged = {**copy.deepcopy(target), **{k: v for k, v in schema.items() if k != "$ref"}}
        return _structural(merged, definitions)
    variants = schema.get("anyOf")
    if variants is not None:
        concrete = [v for v in variants if v.get("type") != "null"]
        if len(concrete) == 1 and len(variants) == 2:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            return {**_structural({**concrete[0], **rest}, definitions), "nullable": True}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("title", "$defs", "additionalProperties"):
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, definitions) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, definitions)
        elif key == "const":
            out["enum"] = [value]
        elif key == "description":
            out[key] = " ".join(str(value).split())  # a docstring's lines, as one paragraph
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema's numeric form; Kubernetes' OpenAPI v3 wants the bound plus a flag.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "default" in out and out["default"] is None:
        del out["default"]
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    document = model.model_json_schema(by_alias=True, mode="serialization")
    return _structural(document, document.get("$defs", {}))


def _crd(
    kind: str,
    plural: str,
    singular: str,
    short_names: tuple[str, ...],
    description: str,
    columns: list[dict[str, Any]],
    spec: type[BaseModel],
    status: type[BaseModel],
) -> dict[str, Any]:
    """A namespaced CustomResourceDefinition of this group, with a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": singular,
                "shortNames": list(short_names),
                "categories": ["pixelfleet"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(spec),
                                "status": {
                                    **openapi_schema(status),
                                    # Kopf keeps its own bookkeeping beside ours.
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def imagejob_crd() -> dict[str, Any]:
    """The ImageJob CustomResourceDefinition, generated from the models above."""
    columns: list[dict[str, Any]] = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Progress", "type": "integer", "jsonPath": ".status.progress"},
        {"name": "Ops", "type": "string", "jsonPath": ".spec.ops"},
        {"name": "Queue", "type": "string", "jsonPath": ".spec.queue", "priority": 1},
        {"name": "Task", "type": "string", "jsonPath": ".status.taskId", "priority": 1},
        {"name": "User", "type": "string", "jsonPath": ".spec.userId", "priority": 1},
        {"name": "Duration", "type": "string", "jsonPath": ".status.duration"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd(
        IMAGEJOB_KIND,
        IMAGEJOB_PLURAL,
        IMAGEJOB_SINGULAR,
        IMAGEJOB_SHORT_NAMES,
        "One image task: made by PixelFleet for an API submission, or applied by hand and "
        "admitted under the namespace's CreditBinding; its status mirrors the task.",
        columns,
        ImageJobSpec,
        ImageJobStatus,
    )


def creditbinding_crd() -> dict[str, Any]:
    columns: list[dict[str, Any]] = [
        {"name": "Account", "type": "string", "jsonPath": ".spec.accountEmail"},
        {"name": "Budget", "type": "integer", "jsonPath": ".spec.budgetCredits"},
        {"name": "Spent", "type": "integer", "jsonPath": ".status.spentCredits"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd(
        CREDITBINDING_KIND,
        CREDITBINDING_PLURAL,
        CREDITBINDING_SINGULAR,
        CREDITBINDING_SHORT_NAMES,
        "Charges a namespace's ImageJobs to a PixelFleet account, within a budget.",
        columns,
        CreditBindingSpec,
        CreditBindingStatus,
    )


def workerpool_crd() -> dict[str, Any]:
    columns: list[dict[str, Any]] = [
        {"name": "Deployment", "type": "string", "jsonPath": ".spec.deployment"},
        {"name": "Min", "type": "integer", "jsonPath": ".spec.minReplicas"},
        {"name": "Max", "type": "integer", "jsonPath": ".spec.maxReplicas"},
        {"name": "Backlog", "type": "integer", "jsonPath": ".status.backlog"},
        {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
        {"name": "Current", "type": "integer", "jsonPath": ".status.currentReplicas"},
        {"name": "Last Scale", "type": "date", "jsonPath": ".status.lastScaleTime"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd(
        WORKERPOOL_KIND,
        WORKERPOOL_PLURAL,
        WORKERPOOL_SINGULAR,
        WORKERPOOL_SHORT_NAMES,
        "A worker Deployment scaled from its queue's backlog.",
        columns,
        WorkerPoolSpec,
        WorkerPoolStatus,
    )


def crd_manifests() -> dict[str, dict[str, Any]]:
    """Every CRD, by the file name the chart keeps it under (`charts/pixelfleet/crds/`)."""
    return {
        "imagejobs.yaml": imagejob_crd(),
        "creditbindings.yaml": creditbinding_crd(),
        "workerpools.yaml": workerpool_crd(),
    }


def render_yaml(manifest: dict[str, Any]) -> str:
    import yaml

    header = (
        "# Generated from pixelfleet/operator/resources.py by `pixelfleet crds`: do not edit.\n"
    )
    return header + yaml.safe_dump(manifest, sort_keys=False, width=100, allow_unicode=True)


def imagejob_manifest(
    spec: ImageJobSpec, namespace: str, *, request_id: str | None = None
) -> dict[str, Any]:
    """The ImageJob PixelFleet makes for an API submission (`task-<id>`)."""
    assert spec.task_id is not None
    metadata: dict[str, Any] = {
        "name": imagejob_name(spec.task_id),
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY_PIXELFLEET},
    }
    if request_id:
        metadata["annotations"] = {REQUEST_ID_ANNOTATION: request_id}
    return {
        "apiVersion": API_VERSION,
        "kind": IMAGEJOB_KIND,
        "metadata": metadata,
        "spec": spec.model_dump(mode="json", by_alias=True),
    }
