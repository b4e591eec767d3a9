"""Administration, for the interactive login of an administrator (never an API key). Every change
is written to the audit trail with the request's id."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from pixelfleet.accounts.schemas import UserOut
from pixelfleet.admin import service as admin
from pixelfleet.admin.schemas import (
    AccountStatusChange,
    AdminActionKind,
    AdminStats,
    AdminTaskPage,
    AdminUserOut,
    AuditPage,
    CreditAdjustmentIn,
    CreditAdjustmentOut,
    Role,
    UserPage,
)
from pixelfleet.api.deps import AdminUser, ContextDep, ReadSessionDep, SessionDep
from pixelfleet.jobs.states import TaskStatus
from pixelfleet.models import User
from pixelfleet.observability import log_context
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from pixelfleet.privacy.schemas import ErasureAccepted


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {}}}


_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: _problem("No credential, or an invalid one."),
    403: _problem(
        "`admin-required` for anyone but an administrator, `insufficient-scope` for an API key "
        "(administration needs a login)."
    ),
}
_NO_USER: dict[int | str, dict[str, Any]] = {404: _problem("`user-not-found`.")}

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=_REFUSALS)

Cursor = Annotated[str | None, Query(max_length=512)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]


def _actor(user: User) -> admin.Actor:
    return admin.Actor.of(user, log_context.current().get("request_id"))


@router.get("/users", response_model=UserPage)
async def list_users(
    _admin: AdminUser,
    session: ReadSessionDep,
    email: Annotated[
        str | None,
        Query(
            max_length=320,
            pattern=r"^[^\x00-\x1f\x7f]*$",
            description="Part of the email address (any case).",
        ),
    ] = None,
    role: Role | None = None,
    active: Annotated[bool | None, Query(description="Only active (or inactive) accounts.")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> UserPage:
    """Every account, newest first."""
    return await admin.list_users(
        session, email=email, role=role, active=active, cursor=cursor, limit=limit
    )


@router.get("/users/{user_id}", response_model=AdminUserOut, responses=_NO_USER)
async def get_user(user_id: uuid.UUID, _admin: AdminUser, session: ReadSessionDep) -> AdminUserOut:
    """One account, with its tasks counted, its ledger's sum and its usable API keys."""
    return await admin.get_user(session, user_id)


@router.post(
    "/users/{user_id}/deactivate",
    response_model=UserOut,
    responses={**_NO_USER, 409: _problem("`cannot-deactivate-self`.")},
)
async def deactivate_user(
    user_id: uuid.UUID, body: AccountStatusChange, admin_user: AdminUser, session: SessionDep
) -> UserOut:
    """Switch an account off: its access tokens, refresh tokens and API keys stop working at
    once. Deactivating an inactive account changes nothing (and is not audited again)."""
    return await admin.deactivate_user(session, _actor(admin_user), user_id, body.reason)


@router.post("/users/{user_id}/reactivate", response_model=UserOut, responses=_NO_USER)
async def reactivate_user(
    user_id: uuid.UUID, body: AccountStatusChange, admin_user: AdminUser, session: SessionDep
) -> UserOut:
    """Switch an account back on: its owner can log in again (revoked tokens and API keys stay
    revoked). Reactivating an active account changes nothing."""
    return await admin.reactivate_user(session, _actor(admin_user), user_id, body.reason)


@router.post(
    "/users/{user_id}/erase",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureAccepted,
    responses={**_NO_USER, 409: _problem("`cannot-erase-self`.")},
)
async def erase_user(
    user_id: uuid.UUID,
    body: AccountStatusChange,
    admin_user: AdminUser,
    ctx: ContextDep,
    session: SessionDep,
) -> ErasureAccepted:
    """Erase an account for good, as its owner's `DELETE /v1/me` does: its queued tasks are
    cancelled and refunded, its running ones stopped, its tasks, presets, assets, uploads, API
    keys and logins deleted, and its stored files right after; its payments and ledger are
    kept under an anonymised account (the audit trail names it so). Erasing an erased account
    changes nothing (and is not audited again)."""
    return await admin.erase_user(
        session, _actor(admin_user), user_id, body.reason, ctx.retention
    )


@router.post(
    "/users/{user_id}/credits",
    status_code=status.HTTP_201_CREATED,
    response_model=CreditAdjustmentOut,
    responses={
        200: {
            "model": CreditAdjustmentOut,
            "description": "A replay: the adjustment made before with this Idempotency-Key.",
            "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}},
        },
        **_NO_USER,
        409: _problem(
            "`balance-too-low` (a take-back would leave the balance below zero), "
            "`balance-too-high`, or `idempotency-key-reused` (for a different adjustment)."
        ),
    },
)
async def adjust_credits(
    user_id: uuid.UUID,
    body: CreditAdjustmentIn,
    admin_user: AdminUser,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Repeat-safe key: the same adjustment sent again with it applies once.",
        ),
    ] = None,
) -> CreditAdjustmentOut:
    """Grant credits, or take them back with a negative amount: an `admin_adjust` ledger entry
    whose note is the reason."""
    result = await admin.adjust_credits(
        session,
        _actor(admin_user),
        user_id,
        body.amount,
        body.reason,
        idempotency_key=idempotency_key,
    )
    if result.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return result.adjustment


@router.get("/tasks", response_model=AdminTaskPage)
async def list_all_tasks(
    _admin: AdminUser,
    session: ReadSessionDep,
    status_filter: Annotated[TaskStatus | None, Query(alias="status")] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Only this account's tasks.")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> AdminTaskPage:
    """Every account's tasks, newest first."""
    return await admin.list_tasks(
        session, status=status_filter, user_id=user_id, cursor=cursor, limit=limit
    )


@router.get("/stats", response_model=AdminStats)
async def stats(_admin: AdminUser, session: ReadSessionDep) -> AdminStats:
    """Accounts, tasks by status, credits by ledger kind, payments by state, audit rows."""
    return await admin.stats(session)


@router.get("/audit", response_model=AuditPage)
async def audit_trail(
    _admin: AdminUser,
    session: ReadSessionDep,
    action: AdminActionKind | None = None,
    target_user_id: Annotated[
        uuid.UUID | None, Query(description="Only changes made to this account.")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> AuditPage:
    """The administrators' changes, newest first."""
    return await admin.audit_trail(
        session, action=action, target_user_id=target_user_id, cursor=cursor, limit=limit
    )
