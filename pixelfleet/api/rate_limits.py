"""The rate limits as route dependencies: each takes one request from its rules' allowances
and refuses with 429 and `Retry-After` once one is spent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from pixelfleet.accounts.service import normalise_email
from pixelfleet.api.deps import ContextDep, SessionCaller, SessionUser, TaskWriter

RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Too many requests: wait the `Retry-After` seconds, then try again.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/problem+json": {}},
    }
}


def client_address(request: Request) -> str:
    """The client's address (the proxy's X-Forwarded-For when it is a trusted proxy)."""
    return request.client.host if request.client else "unknown"


async def limit_login(
    request: Request,
    ctx: ContextDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> None:
    await ctx.limiter.check("login_per_address", client_address(request))
    await ctx.limiter.check("login_per_account", normalise_email(form.username))


async def limit_password_guesses(request: Request, ctx: ContextDep, caller: SessionCaller) -> None:
    """A password change checks the current password: each try counts as a login's."""
    await ctx.limiter.check("login_per_address", client_address(request))
    await ctx.limiter.check("login_per_account", caller.user.email)


async def limit_mail_to(request: Request, ctx: ContextDep, email: str) -> None:
    """A mailed link asked for (a reset, a verification): per address and per mailbox."""
    await ctx.limiter.check("mail_per_address", client_address(request))
    await ctx.limiter.check("mail_per_account", normalise_email(email))


async def limit_registration(request: Request, ctx: ContextDep) -> None:
    await ctx.limiter.check("register_per_address", client_address(request))


async def limit_task_submission(request: Request, ctx: ContextDep, user: TaskWriter) -> None:
    await ctx.limiter.check("tasks_per_user", str(user.id))
    await ctx.limiter.check("tasks_per_address", client_address(request))


async def limit_asset_uploads(request: Request, ctx: ContextDep, user: TaskWriter) -> None:
    await ctx.limiter.check("assets_per_user", str(user.id))
    await ctx.limiter.check("assets_per_address", client_address(request))


async def limit_preset_writes(request: Request, ctx: ContextDep, user: TaskWriter) -> None:
    await ctx.limiter.check("presets_per_user", str(user.id))
    await ctx.limiter.check("presets_per_address", client_address(request))


async def limit_payments(request: Request, ctx: ContextDep, user: SessionUser) -> None:
    await ctx.limiter.check("payments_per_user", str(user.id))
    await ctx.limiter.check("payments_per_address", client_address(request))
