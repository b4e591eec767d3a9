"""Row-level security on PostgreSQL: a second wall between users' rows.

The migration `0006_row_level_security` turns on policies for the tables that hold a user's
own rows (`OWNED_TABLES`): a row is visible to, and may be written by, the role `API_ROLE` only
while the transaction's setting `USER_SETTING` names its `user_id`. The API takes that role, and
names its caller, at the start of each transaction of a request made by a user (`act_as`), so a
query that forgets its owner filter still finds none of another user's rows.

Everything else connects as the tables' owner, to which the policies do not apply: the worker,
the scheduler and the operator (they serve every user), the credential checks before a caller
is known, and requests made by an administrator (whose changes the audit trail records).
SQLite has no row-level security: there, nothing changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

API_ROLE = "pixelfleet_api"
USER_SETTING = "pixelfleet.user_id"
OWNED_TABLES = (
    "tasks",
    "credit_entries",
    "payments",
    "presets",
    "api_keys",
    "assets",
    "idempotency_keys",
    "uploads",
    "derivatives",
)

_acting_user: ContextVar[uuid.UUID | None] = ContextVar("pixelfleet_acting_user", default=None)

_ACTING_IN_TRANSACTION = "pixelfleet.row_security.acting"
"""The session.info key of whom the session's current transaction acts for."""

_TAKE_ROLE = text(
    f"SELECT set_config('role', '{API_ROLE}', true), set_config('{USER_SETTING}', :user_id, true)"
)


def act_as(user_id: uuid.UUID | None) -> None:
    """From now on in this context (a request), each transaction runs as the API's role on
    behalf of `user_id` (None: as the owner)."""
    _acting_user.set(user_id)


@contextmanager
def scope() -> Iterator[None]:
    """A request's own binding: whatever `act_as` says inside ends with the block."""
    token = _acting_user.set(None)
    try:
        yield
    finally:
        _acting_user.reset(token)


@contextmanager
def acting_as(user_id: uuid.UUID | None) -> Iterator[None]:
    with scope():
        act_as(user_id)
        yield


def _take_role(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    user_id = _acting_user.get()
    if user_id is not None and connection.dialect.name == "postgresql":
        connection.execute(_TAKE_ROLE, {"user_id": str(user_id)})
    session.info[_ACTING_IN_TRANSACTION] = user_id


async def take_role_now(session: AsyncSession) -> None:
    """The transaction `session` is in (begun before `act_as` named the caller: the one their
    credential was read in) runs as `act_as` says from now on. Without a transaction there is
    nothing to do: the next one takes the role as it begins."""
    user_id = _acting_user.get()
    if not session.in_transaction() or session.info.get(_ACTING_IN_TRANSACTION) == user_id:
        return
    if user_id is None:
        raise RuntimeError("a transaction acting for a user cannot go back to the owner")
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_TAKE_ROLE, {"user_id": str(user_id)})
    session.info[_ACTING_IN_TRANSACTION] = user_id


def install() -> None:
    """Applies `act_as` to every session's transactions (idempotent)."""
    if not event.contains(Session, "after_begin", _take_role):
        event.listen(Session, "after_begin", _take_role)
