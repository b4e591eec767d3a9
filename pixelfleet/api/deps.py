"""Request-scoped dependencies: the process context, database sessions, the caller."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBearer,
    OAuth2PasswordBearer,
    SecurityScopes,
)
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet import row_security
from pixelfleet.accounts import api_keys, email_verification, scopes
from pixelfleet.accounts import service as accounts
from pixelfleet.accounts.tokens import AccessClaims
from pixelfleet.context import ProcessContext
from pixelfleet.db import run_committed_work, runs_committed_work, utcnow
from pixelfleet.errors import NotFound, PixelFleetError, Unauthorized
from pixelfleet.models import User
from pixelfleet.observability import log_context

T = TypeVar("T")

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/v1/auth/token", scopes=scopes.ALL_SCOPES, auto_error=False
)
# The same header carries an API key; declared so the docs' Authorize dialog takes one too.
api_key_scheme = HTTPBearer(
    scheme_name="APIKey",
    bearerFormat="pfk_…",
    description="An API key from POST /v1/me/api-keys, sent as `Authorization: Bearer pfk_…`.",
    auto_error=False,
)


# The bearer credential, as the docs' two schemes declare it (its value is the same header).
BearerToken = Annotated[str | None, Depends(oauth2_scheme)]
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Depends(api_key_scheme)]


async def get_context(request: Request) -> ProcessContext:
    # Async, so FastAPI calls it in place rather than in its thread pool (a hop per request).
    ctx: ProcessContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ProcessContext, Depends(get_context)]


class RequestSessions:
    """The database sessions of one request, each opened when first needed and never two at
    once, so a busy pool cannot deadlock on itself.

    The caller is read in the request's read session, and a route that only reads goes on in
    that same session and transaction: one connection, one `BEGIN`, for the credential and the
    answer. A route that writes gets its unit of work once the read session has ended."""

    def __init__(self, ctx: ProcessContext) -> None:
        self._ctx = ctx
        self._reads: AsyncSession | None = None
        self.routed_reads = False  # the route itself reads in the read session
        self.writes = False  # the route takes the unit of work

    def reads(self) -> AsyncSession:
        if self._reads is None:
            self._reads = self._ctx.read_sessions()
        return self._reads

    async def end_reads(self) -> None:
        """Ends the read session's transaction and gives its connection back (what it loaded
        stays readable, detached; a later read begins anew)."""
        if self._reads is not None:
            await self._reads.close()

    async def follow_caller(self) -> None:
        """Once the caller is known: the route's reads run as them from here on, even in the
        transaction that began when their credential was read (`row_security`)."""
        if self._reads is not None and self.routed_reads:
            await row_security.take_role_now(self._reads)


async def get_request_sessions(ctx: ContextDep) -> AsyncIterator[RequestSessions]:
    sessions = RequestSessions(ctx)
    try:
        yield sessions
    finally:
        await sessions.end_reads()


RequestSessionsDep = Annotated[RequestSessions, Depends(get_request_sessions, scope="function")]


async def get_session(ctx: ContextDep, sessions: RequestSessionsDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the handler returns, rolled back if it raises.

    It commits before the response is sent, so a client never sees a success that was not stored.
    The work its services queued for after the commit (`db.after_commit`: a dispatch, a task's
    event, a webhook send) runs once the commit is done, also before the response; work queued
    in a transaction that rolled back never runs."""
    sessions.writes = True
    await sessions.end_reads()  # the caller, if read already: never two connections at once
    async with ctx.sessions() as session:
        runs_committed_work(session)
        try:
            yield session
        except Exception:
            await session.rollback()
            # A handler may have committed part of its work before it failed.
            await run_committed_work(session, ctx)
            raise
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        await run_committed_work(session, ctx)


async def get_read_session(sessions: RequestSessionsDep) -> AsyncSession:
    """A session for handlers that only read (it takes no write lock on SQLite): the one the
    caller was read in."""
    sessions.routed_reads = True
    await sessions.follow_caller()
    return sessions.reads()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]


async def get_caller(
    security_scopes: SecurityScopes,
    ctx: ContextDep,
    sessions: RequestSessionsDep,
    token: BearerToken,
    _key: BearerKey,
) -> accounts.Caller:
    """The caller, read in the request's read session (`RequestSessions`). Refused unless the
    credential holds the scopes the route declares.

    Binds the caller's `user_id` for the rest of the request: an async dependency runs in the
    request's own context (a sync one would run in a copy, in a thread, and the binding would
    not outlive it)."""
    if not token:
        raise Unauthorized(
            "Send an access token or an API key: `Authorization: Bearer <token or key>`."
        )
    caller = await accounts.caller_for_credential(sessions.reads(), token, ctx.signer)
    log_context.bind(user_id=caller.user.id)
    caller.require(security_scopes.scopes)
    # A user's queries meet PostgreSQL's row-level security from here on; an administrator's
    # run as the owner (their changes go to the audit trail).
    row_security.act_as(None if caller.user.role == "admin" else caller.user.id)
    if caller.api_key_id is not None and caller.api_key_use_unrecorded:
        await sessions.end_reads()
        async with ctx.sessions() as session, session.begin():
            await api_keys.note_use(session, caller.api_key_id, utcnow())
    elif sessions.writes:
        await sessions.end_reads()
    await sessions.follow_caller()
    return caller


@dataclass(frozen=True)
class LastingCredential:
    """The caller of a response that outlives its request (an event stream), with the means to
    ask again whether the credential still works: revoked, expired, its account disabled or
    its logins ended, it must stop being served."""

    caller: accounts.Caller
    ctx: ProcessContext
    credential: str = field(repr=False)
    scopes: tuple[str, ...]

    async def refusal(self) -> PixelFleetError | None:
        """Why the credential no longer works, or None while it does (it reads the account's
        row, and an API key's)."""
        try:
            async with self.ctx.read_sessions() as session:
                caller = await accounts.caller_for_credential(
                    session, self.credential, self.ctx.signer
                )
            caller.require(list(self.scopes))
        except PixelFleetError as refused:
            return refused
        return None


async def get_lasting_credential(
    security_scopes: SecurityScopes,
    ctx: ContextDep,
    caller: Annotated[accounts.Caller, Depends(get_caller)],
    token: BearerToken,
) -> LastingCredential:
    assert token is not None  # get_caller refused a request without one
    return LastingCredential(caller, ctx, token, tuple(security_scopes.scopes))


@dataclass(frozen=True)
class OwnRowsReader:
    """The caller of a read of their own rows (a task, say), made in one statement.

    An access token is verified here, but its account is checked by the read itself (it finds
    nothing unless the account still honours the token: `token`), so the request asks the
    database once. An empty answer is then explained by `confirm`: it refuses a credential
    that lost its standing as every route does, and otherwise the rows are truly not there.
    An API key, or a route that needs more than an API key's scopes, takes the caller's full
    check at once (`token` None)."""

    user_id: uuid.UUID
    token: AccessClaims | None
    _check: Callable[[], Awaitable[accounts.Caller]] | None = field(default=None, repr=False)

    async def confirm(self) -> None:
        """Refuses the credential if its account no longer honours it."""
        if self._check is not None:
            await self._check()

    async def read(self, rows: Awaitable[T]) -> T:
        """`rows` read; if there are none, the credential is refused first where it lost its
        standing (its 401 or 403), so that "not found" is only ever said to a valid caller."""
        try:
            return await rows
        except NotFound:
            await self.confirm()
            raise


async def get_own_rows_reader(
    security_scopes: SecurityScopes,
    ctx: ContextDep,
    sessions: RequestSessionsDep,
    token: BearerToken,
    key: BearerKey,
) -> OwnRowsReader:
    claims = accounts.access_claims(token, ctx.signer) if token else None
    if claims is None or not set(security_scopes.scopes) <= scopes.KEY_SCOPES.keys():
        caller = await get_caller(security_scopes, ctx, sessions, token, key)
        return OwnRowsReader(caller.user.id, None)
    credential = token
    assert credential is not None

    async def check() -> accounts.Caller:
        # In the read's own session, as the reader: it only reads the account's row.
        return await accounts.caller_for_credential(sessions.reads(), credential, ctx.signer)

    # Every login holds the scopes an API key can (`scopes.login_scopes`).
    log_context.bind(user_id=claims.user_id)
    row_security.act_as(claims.user_id)  # its own rows, whatever its role
    await sessions.follow_caller()
    return OwnRowsReader(claims.user_id, claims, check)


def _user_with(*needed: str) -> Any:
    return Security(get_caller_user, scopes=list(needed))


async def get_caller_user(
    security_scopes: SecurityScopes,
    ctx: ContextDep,
    sessions: RequestSessionsDep,
    token: BearerToken,
    key: BearerKey,
) -> User:
    return (await get_caller(security_scopes, ctx, sessions, token, key)).user


# Any valid credential.
CurrentCaller = Annotated[accounts.Caller, Security(get_caller)]
# What an API key needs the named scope for; an interactive login holds them all.
TaskReader = Annotated[User, _user_with(scopes.TASKS_READ)]
TaskWriter = Annotated[User, _user_with(scopes.TASKS_WRITE)]
# The same, for a route that records which credential acted (the API key that submits a task).
TaskWritingCaller = Annotated[
    accounts.Caller, Security(get_caller, scopes=[scopes.TASKS_WRITE])
]
CreditReader = Annotated[User, _user_with(scopes.CREDITS_READ)]
# A reader of their own tasks, checked in the read itself (`OwnRowsReader`).
OwnTaskReader = Annotated[OwnRowsReader, Security(get_own_rows_reader, scopes=[scopes.TASKS_READ])]
# A reader of tasks whose credential is checked again while its response lasts.
TaskWatcher = Annotated[
    LastingCredential, Security(get_lasting_credential, scopes=[scopes.TASKS_READ])
]
async def _verified_user(
    ctx: ContextDep, user: Annotated[User, Security(get_caller_user)]
) -> User:
    email_verification.require_verified(ctx.settings, user)
    return user


# A route's dependency: the caller's account has verified its email where that is required
# (it reads the caller once, with the route's own).
VERIFIED_TASK_WRITER = Security(_verified_user, scopes=[scopes.TASKS_WRITE])
VERIFIED_SESSION_USER = Security(_verified_user, scopes=[scopes.SESSION])
# An interactive login only: never an API key.
SessionUser = Annotated[User, _user_with(scopes.SESSION)]
SessionCaller = Annotated[accounts.Caller, Security(get_caller, scopes=[scopes.SESSION])]
AdminUser = Annotated[User, _user_with(scopes.SESSION, scopes.ADMIN)]
