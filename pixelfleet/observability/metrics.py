"""Every Prometheus metric PixelFleet exports, defined once.

Names carry the `pixelfleet_` prefix and base units (seconds, bytes); counters end in `_total`.
Labels take values from small fixed sets only (route templates, operation names, formats,
outcomes, queue and pool names): never a user id, a task id or anything a client chooses.

Processes with several workers (Celery's prefork pool, `pixelfleet up`) use the client's
multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` must be set before this module is first imported
(see `pixelfleet.observability.exposition`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Buckets (seconds): HTTP requests are milliseconds; tasks wait and run for seconds to minutes.
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

UNMATCHED_ROUTE = "unmatched"
"""The `route` label of a request no route matched (404s for made-up paths)."""

# ---- API ---------------------------------------------------------------------------------------
HTTP_REQUEST_SECONDS = Histogram(
    "pixelfleet_http_request_duration_seconds",
    "HTTP requests the API answered, by route template, method and status code.",
    ["route", "method", "status"],
    buckets=_HTTP_BUCKETS,
)

# ---- Tasks -------------------------------------------------------------------------------------
TASKS_SUBMITTED = Counter(
    "pixelfleet_tasks_submitted_total", "Tasks accepted (and debited) by the API."
)
TASKS_FINISHED = Counter(
    "pixelfleet_tasks_finished_total",
    "Tasks that reached a final state, by outcome (succeeded, failed, cancelled).",
    ["outcome"],
)
TASK_QUEUE_SECONDS = Histogram(
    "pixelfleet_task_queue_seconds",
    "From a task's submission to a worker starting it.",
    buckets=_TASK_BUCKETS,
)
TASK_RUN_SECONDS = Histogram(
    "pixelfleet_task_run_seconds",
    "From a worker starting a task to its final state, by outcome.",
    ["outcome"],
    buckets=_TASK_BUCKETS,
)
QUEUE_BACKLOG = Gauge(
    "pixelfleet_queue_backlog",
    "Tasks waiting in a queue for a worker (not yet delivered to one), by queue: measured by "
    "the API when scraped and by the operator's autoscaler when it polls; read it with max().",
    ["queue"],
    multiprocess_mode="mostrecent",
)

# ---- Image work --------------------------------------------------------------------------------
OPERATION_SECONDS = Histogram(
    "pixelfleet_operation_seconds",
    "Time spent in one step of a pipeline: `decode`, an operation by its name, or an "
    "animation's `frames` (each frame through its steps).",
    ["operation"],
    buckets=_STAGE_BUCKETS,
)
ENCODE_SECONDS = Histogram(
    "pixelfleet_encode_seconds",
    "Time spent encoding one output, by output format.",
    ["format"],
    buckets=_STAGE_BUCKETS,
)
SOURCE_MEGAPIXELS = Counter(
    "pixelfleet_source_megapixels_total", "Megapixels of the source images processed."
)
BYTES_RECEIVED = Counter("pixelfleet_bytes_received_total", "Bytes of images uploaded.")
BYTES_PRODUCED = Counter(
    "pixelfleet_bytes_produced_total", "Bytes of results written, by output format.", ["format"]
)

# ---- Money -------------------------------------------------------------------------------------
CREDITS = Counter(
    "pixelfleet_credits_total",
    "Credits moved through the ledger, by kind of entry (task_debit, task_refund, purchase, "
    "purchase_reversal, grant, admin_adjust); always counted as a positive amount.",
    ["kind"],
)
PAYMENTS = Counter(
    "pixelfleet_payments_total",
    "Payments entering a state (created, paid, failed, partially_refunded, refunded).",
    ["state"],
)

# ---- Webhooks ----------------------------------------------------------------------------------
WEBHOOK_DELIVERIES = Counter(
    "pixelfleet_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retrying, failed, refused).",
    ["outcome"],
)

MAIL_ATTEMPTS = Counter(
    "pixelfleet_mail_attempts_total",
    "Attempts to send mail to account holders, by kind and outcome (sent, retrying, failed).",
    ["kind", "outcome"],
)

# ---- Image sources -----------------------------------------------------------------------------
SOURCE_FETCH_OUTCOMES = ("fetched", "refused", "unreachable", "too_large", "not_an_image")
SOURCE_FETCHES = Counter(
    "pixelfleet_source_fetches_total",
    "Source URLs fetched for tasks, by outcome (fetched, refused, unreachable, too_large, "
    "not_an_image).",
    ["outcome"],
)
for _outcome in SOURCE_FETCH_OUTCOMES:
    SOURCE_FETCHES.labels(_outcome)  # every outcome's series exists from the start, at 0
SOURCE_FETCH_BYTES = Counter(
    "pixelfleet_source_fetch_bytes_total", "Bytes of source images fetched from URLs."
)

# ---- Delivery ----------------------------------------------------------------------------------
DELIVERY_ROUTES = ("result", "signed_result", "image")
"""The owner's `/v1/tasks/{id}/result`, a signed `/v1/results/{token}`, a derivative's
`/v1/images/{token}`."""
DELIVERED_BYTES = Counter(
    "pixelfleet_delivered_bytes_total",
    "Bytes of images the API sent (bodies of 200 and 206 answers), by route (result, "
    "signed_result, image); a redirect to storage sends none.",
    ["route"],
)
DELIVERY_REDIRECTS = Counter(
    "pixelfleet_delivery_redirects_total",
    "Signed result URLs answered with a redirect to a presigned storage URL.",
)
IMAGE_CACHE_OUTCOMES = ("hit", "miss")
IMAGE_REQUESTS = Counter(
    "pixelfleet_image_requests_total",
    "Derivative URL reads, by cache outcome: hit (the derivative was stored) or miss (this "
    "read derived it, or waited for it).",
    ["cache"],
)
DERIVATION_OUTCOMES = ("succeeded", "failed", "pending")
DERIVATIONS = Counter(
    "pixelfleet_derivations_total",
    "Derivatives started by a first read, by how that read ended: succeeded (served), failed, "
    "or pending (503: still deriving when the time budget ran out).",
    ["outcome"],
)
for _route in DELIVERY_ROUTES:
    DELIVERED_BYTES.labels(_route)
for _cache in IMAGE_CACHE_OUTCOMES:
    IMAGE_REQUESTS.labels(_cache)
for _derivation in DERIVATION_OUTCOMES:
    DERIVATIONS.labels(_derivation)

# ---- Operator and autoscaler -------------------------------------------------------------------
OPERATOR_RECONCILES = Counter(
    "pixelfleet_operator_reconciles_total",
    "Handler runs of the operator, by resource (imagejobs, workerpools) and handler.",
    ["resource", "handler"],
)
OPERATOR_ERRORS = Counter(
    "pixelfleet_operator_errors_total",
    "Handler runs of the operator that raised, by resource and handler.",
    ["resource", "handler"],
)
AUTOSCALER_DESIRED_REPLICAS = Gauge(
    "pixelfleet_autoscaler_desired_replicas",
    "Replicas the autoscaler wants for a WorkerPool's Deployment.",
    ["pool"],
    multiprocess_mode="mostrecent",
)
AUTOSCALER_CURRENT_REPLICAS = Gauge(
    "pixelfleet_autoscaler_current_replicas",
    "Replicas a WorkerPool's Deployment has.",
    ["pool"],
    multiprocess_mode="mostrecent",
)

ALL = (
    HTTP_REQUEST_SECONDS,
    TASKS_SUBMITTED,
    TASKS_FINISHED,
    TASK_QUEUE_SECONDS,
    TASK_RUN_SECONDS,
    QUEUE_BACKLOG,
    OPERATION_SECONDS,
    ENCODE_SECONDS,
    SOURCE_MEGAPIXELS,
    BYTES_RECEIVED,
    BYTES_PRODUCED,
    CREDITS,
    PAYMENTS,
    WEBHOOK_DELIVERIES,
    MAIL_ATTEMPTS,
    SOURCE_FETCHES,
    SOURCE_FETCH_BYTES,
    DELIVERED_BYTES,
    DELIVERY_REDIRECTS,
    IMAGE_REQUESTS,
    DERIVATIONS,
    OPERATOR_RECONCILES,
    OPERATOR_ERRORS,
    AUTOSCALER_DESIRED_REPLICAS,
    AUTOSCALER_CURRENT_REPLICAS,
)
"""Every metric, for the tests and the dashboard check."""
