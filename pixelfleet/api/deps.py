"""Request-scoped dependencies: the process context, database sessions, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts import service as accounts
from pixelfleet.context import ProcessContext
from pixelfleet.errors import Unauthorized
from pixelfleet.models import User
from pixelfleet.observability import log_context

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


def get_context(request: Request) -> ProcessContext:
    ctx: ProcessContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ProcessContext, Depends(get_context)]


async def get_session(ctx: ContextDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the handler returns, rolled back if it raises.

    It commits before the response is sent, so a client never sees a success that was not stored."""
    async with ctx.sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def get_read_session(ctx: ContextDep) -> AsyncIterator[AsyncSession]:
    """A session for handlers that only read (it takes no write lock on SQLite)."""
    async with ctx.read_sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


async def get_current_user(
    ctx: ContextDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    """The caller, read in a session of its own that ends at once: a request never holds two
    connections, so a busy pool cannot deadlock on itself.

    Binds the caller's `user_id` for the rest of the request: an async dependency runs in the
    request's own context (a sync one would run in a copy, in a thread, and the binding would
    not outlive it)."""
    if not token:
        raise Unauthorized("Send an access token: `Authorization: Bearer <token>`.")
    async with ctx.read_sessions() as session:
        user = await accounts.user_for_access_token(session, token, ctx.signer)
    log_context.bind(user_id=user.id)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
