"""Uploads, never more than the upload limit allows.

An image task's upload is written into storage as it arrives (`StagingRoute`): each file part
of a multipart body goes into an object the storage stages (`Storage.stage`), chunk by chunk on
the event loop, and the route stores that object under its key once the upload is accepted. For
a local storage that is one write of the bytes and a rename, where Starlette's own parser
spools a part over 1 MB into a temporary file, one thread hop per chunk, and the route then
reads it back and writes it again.

Starlette offers no hook for where a file part goes, so `StagingRequest` replaces the parser
its `form()` uses with a subclass that differs in that alone; everything else (framing, limits,
field decoding, errors) is Starlette's."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from fastapi import Request, UploadFile
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import Response

from pixelfleet.context import ProcessContext
from pixelfleet.imaging.errors import ImageTooLarge
from pixelfleet.storage import StagedObject, Storage


async def read_upload(file: UploadFile, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"Uploads are limited to {limit} bytes (max_upload_bytes).")
    return data


def staged_upload(file: UploadFile, limit: int) -> StagedObject:
    """The staged object a `StagingRoute` wrote the file part into; ImageTooLarge over `limit`."""
    if not isinstance(file, StagedUploadFile):
        raise TypeError("the route must be a StagingRoute for its file part to be staged")
    if file.size is None or file.size > limit:
        raise ImageTooLarge(f"Uploads are limited to {limit} bytes (max_upload_bytes).")
    return file.staged


STAGED_FIELD = "file"
"""The form field whose file part is staged."""


class StagedUploadFile(UploadFile):
    """A file part written into a staged object, up to one byte over the limit (enough to tell
    it is too large; the body limit outside bounds what is read and dropped)."""

    def __init__(self, staged: StagedObject, limit: int, filename: str, headers: Headers) -> None:
        super().__init__(staged.file, size=0, filename=filename, headers=headers)
        self.staged = staged
        self._room = limit + 1

    @property
    def _in_memory(self) -> bool:
        return True  # a staged object's writes are quick: made on the event loop

    async def write(self, data: bytes) -> None:
        assert self.size is not None
        self.size += len(data)
        if self._room > 0:
            kept = data[: self._room]
            self._room -= len(kept)
            self.staged.file.write(kept)

    async def close(self) -> None:
        self.staged.discard()  # nothing once the route has stored it


class _StagingParser(MultiPartParser):
    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        storage: Storage,
        limit: int,
        **limits: Any,
    ) -> None:
        super().__init__(headers, stream, **limits)
        self._storage = storage
        self._limit = limit
        self._staged: list[StagedObject] = []

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        part = self._current_part
        # Only the first file part named `file` is staged: a body of many small file parts must
        # not hold a file open for each (the others stay Starlette's spools, and are unused).
        if part.file is not None and part.field_name == STAGED_FIELD and not self._staged:
            part.file.file.close()  # Starlette's spool, still empty
            staged = self._storage.stage()
            self._staged.append(staged)
            part.file = StagedUploadFile(
                staged, self._limit, part.file.filename or "", part.file.headers
            )

    async def parse(self) -> FormData:
        try:
            form = await super().parse()
        except BaseException:
            for staged in self._staged:
                staged.discard()
            raise
        # A part the body ended inside of is not in the form (so not closed with it).
        kept = {
            id(value.staged)
            for _, value in form.multi_items()
            if isinstance(value, StagedUploadFile)
        }
        for staged in self._staged:
            if id(staged) not in kept:
                staged.discard()
        return form


class StagingRequest(Request):
    """A request whose multipart form stages its file parts in the process's storage."""

    async def _get_form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> FormData:
        content_type, _ = parse_options_header(self.headers.get("content-type"))
        if self._form is None and content_type == b"multipart/form-data":
            ctx: ProcessContext = self.app.state.ctx
            try:
                async with aclosing(self.stream()) as stream:
                    parser = _StagingParser(
                        self.headers,
                        stream,
                        ctx.storage,
                        ctx.settings.max_upload_bytes,
                        max_files=max_files,
                        max_fields=max_fields,
                        max_part_size=max_part_size,
                    )
                    self._form = await parser.parse()
            except MultiPartException as exc:  # as Starlette answers its own parser's errors
                raise HTTPException(status_code=400, detail=exc.message) from exc
        return await super()._get_form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )


class StagingRoute(APIRoute):
    """A route whose requests are `StagingRequest`s (FastAPI's documented custom route)."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def staging_handler(request: Request) -> Response:
            response: Response = await handler(StagingRequest(request.scope, request.receive))
            return response

        return staging_handler
