"""The body of `POST /v1/tasks` (and of a quote): a multipart upload, or a JSON document naming
its source (`{"source": {"url" | "upload" | "task" | "asset": ...}, "pipeline": {...},
"callback_url"}`).

The route reads its body itself, after the caller is authenticated, since FastAPI declares one
body per route. What FastAPI and `request_text` did for the form is done here alike: a missing
or mistyped field is a 422 naming it, and every text is held to the client-text rule."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData

from pixelfleet.api.deps import RequestSessions
from pixelfleet.api.request_text import problem_in_form
from pixelfleet.api.uploads import StagedUploadFile, staged_upload
from pixelfleet.assets.errors import AssetNotFound
from pixelfleet.client_text import UnsafeText, problem_in_json
from pixelfleet.context import ProcessContext
from pixelfleet.documented_schema import documented_as
from pixelfleet.errors import FieldError, InvalidInput, PixelFleetError
from pixelfleet.imaging.errors import ImageTooLarge, UnsupportedImage
from pixelfleet.imaging.spec import Pipeline
from pixelfleet.jobs.errors import TaskNotFound
from pixelfleet.models import User
from pixelfleet.presets.schemas import PresetReference
from pixelfleet.sources.errors import (
    SourceExpired,
    SourceRefused,
    SourceTooLarge,
    SourceUnreachable,
)
from pixelfleet.sources.schemas import (
    SOURCE_KINDS,
    UPLOADED_WITH_THE_TASK,
    Source,
    SourceOrigin,
)
from pixelfleet.sources.service import staged_source
from pixelfleet.storage import StagedObject
from pixelfleet.uploads.errors import UploadMismatch, UploadNotFound, UploadNotReceived

MULTIPART = "multipart/form-data"
JSON = "application/json"
EXAMPLE_PIPELINE = {
    "operations": [{"op": "resize", "width": 800}],
    "output": {"format": "webp", "quality": 80},
}


EXAMPLE_PIPELINE_TEXT = json.dumps(EXAMPLE_PIPELINE)


def _optional_form_field(schema: dict[str, Any]) -> None:
    """A form field that may be left out or left empty, as a browser's form sends it: a
    string, empty by default. (A null would be sent as "null", and a `format: uri` makes
    Swagger UI fill in a sample URL.)"""
    schema.pop("anyOf", None)
    schema.update({"type": "string", "default": ""})


class TaskUpload(BaseModel):
    """A task whose image is uploaded in the request (`multipart/form-data`). Documentation
    only: `read_submission` reads the form."""

    file: str = Field(
        description="The image to process.",
        examples=["photo.jpg"],
        json_schema_extra={"contentMediaType": "application/octet-stream"},
    )
    pipeline: str = Field(
        default="{}",
        description=f"JSON: {EXAMPLE_PIPELINE_TEXT}",
        examples=[EXAMPLE_PIPELINE_TEXT],
    )
    callback_url: str | None = Field(
        default=None,
        # No example value: "Try it out" would send it, and a delivery would go to a stranger.
        json_schema_extra=_optional_form_field,
        description="An http(s) URL of yours that receives a signed POST when the task "
        "finishes, such as `https://app.yours.example/hooks/pixelfleet` (see "
        "GET /v1/me/webhook-secret).",
    )


class TaskSubmission(BaseModel):
    """A task whose image is named, not uploaded in the request."""

    model_config = ConfigDict(extra="forbid")
    source: Source = Field(
        description="Exactly one of `url`, `upload`, `task` or `asset`.",
        examples=[{"url": "https://images.example/photo.jpg"}],
    )
    # Read as sent: `parse_pipeline` (or the preset it names) makes it a Pipeline.
    pipeline: Annotated[dict[str, Any], documented_as(Pipeline | PresetReference)] = Field(
        default_factory=dict,
        description='The pipeline, as in the form\'s `pipeline` field (or `{"preset": NAME}`).',
        examples=[EXAMPLE_PIPELINE],
    )
    callback_url: str | None = Field(
        default=None,
        description="An http(s) URL that receives a signed POST when the task finishes.",
    )


SUBMISSION_MODELS: tuple[type[BaseModel], ...] = (TaskUpload, TaskSubmission)
"""The models of the bodies `read_submission` reads, for the OpenAPI document's components."""
SUBMISSION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            MULTIPART: {"schema": {"$ref": "#/components/schemas/TaskUpload"}},
            JSON: {"schema": {"$ref": "#/components/schemas/TaskSubmission"}},
        },
    }
}
"""The request body of a route that reads a submission (its `openapi_extra`)."""
SUBMISSION_PROBLEMS: tuple[type[PixelFleetError], ...] = (
    ImageTooLarge,
    UnsupportedImage,
    TaskNotFound,
    AssetNotFound,
    SourceExpired,
    SourceRefused,
    SourceUnreachable,
    SourceTooLarge,
    UploadNotFound,
    UploadNotReceived,
    UploadMismatch,
)
"""What reading a submission's image may answer (for the routes' documented responses)."""


@dataclass
class Submission:
    """A submission's parts, once read: its image staged (the route stores or discards it)."""

    upload: StagedObject
    pipeline: str | Mapping[str, Any]
    callback_url: str | None
    origin: SourceOrigin = UPLOADED_WITH_THE_TASK


def _missing(*loc: str, message: str = "Field required") -> RequestValidationError:
    return RequestValidationError([{"type": "missing", "loc": ("body", *loc), "msg": message}])


def _located(error: ValidationError, *prefix: str) -> RequestValidationError:
    return RequestValidationError(
        [{**detail, "loc": ("body", *prefix, *detail["loc"])} for detail in error.errors()]
    )


def _form_text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _missing(name, message="must be a text field, not a file")


def _from_form(form: FormData, limit: int) -> Submission:
    problem = problem_in_form(form)
    if problem is not None:
        raise UnsafeText(problem)
    file = form.get("file")
    if not isinstance(file, StagedUploadFile):
        raise _missing("file")
    return Submission(
        staged_upload(file, limit),
        _form_text(form, "pipeline") or "{}",
        _form_text(form, "callback_url"),
    )


def _source_of(document: dict[str, Any]) -> BaseModel:
    source = document.get("source")
    if not isinstance(source, dict):
        raise _missing("source", message="must be an object naming url, upload, task or asset")
    kinds = [kind for kind in SOURCE_KINDS if kind in source]
    if len(kinds) != 1:
        raise _missing("source", message="must name exactly one of url, upload, task or asset")
    try:
        return SOURCE_KINDS[kinds[0]].model_validate(source)
    except ValidationError as error:
        raise _located(error, "source") from None


def _parsed_json(body: bytes) -> TaskSubmission:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "is not a valid JSON document"}]
        ) from None
    problem = problem_in_json(document, "")
    if problem is not None:
        raise UnsafeText(problem)
    if not isinstance(document, dict):
        raise _missing(message="must be a JSON object")
    source = _source_of(document)
    try:
        return TaskSubmission.model_validate({**document, "source": source})
    except ValidationError as error:
        raise _located(error) from None


async def read_submission(
    request: Request, ctx: ProcessContext, sessions: RequestSessions, user: User
) -> Submission:
    """The submission in the request's body, its image staged; a 422 naming what is wrong."""
    content_type, _ = parse_options_header(request.headers.get("content-type"))
    # A url-encoded form can carry no file: it is read (as FastAPI read it) to say so.
    if content_type in {MULTIPART.encode(), b"application/x-www-form-urlencoded"}:
        form = await request.form()
        try:
            return _from_form(form, ctx.settings.max_upload_bytes)
        except BaseException:
            await form.close()  # its staged file part, if any, is discarded
            raise
    if content_type == JSON.encode():
        submission = _parsed_json(await request.body())
        upload = await staged_source(
            ctx.storage,
            ctx.settings,
            user,
            submission.source,
            reads=sessions.reads,
            end_reads=sessions.end_reads,
        )
        return Submission(
            upload,
            submission.pipeline,
            submission.callback_url,
            SourceOrigin.of(submission.source),
        )
    raise InvalidInput(
        f"The body must be {MULTIPART} (an upload) or {JSON} (a named source).",
        errors=[FieldError("Content-Type", f"must be {MULTIPART} or {JSON}")],
    )
