from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pixelfleet.accounts import service as accounts
from pixelfleet.accounts.schemas import UserOut
from pixelfleet.api.deps import CreditReader, CurrentCaller, ReadSessionDep
from pixelfleet.credits import service as credits
from pixelfleet.credits.schemas import CreditsOut
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/v1", tags=["account"])


@router.get("/me", response_model=UserOut)
async def get_me(caller: CurrentCaller) -> UserOut:
    """The caller's account, for any credential. The `balance` is null for an API key without
    `credits:read`."""
    return accounts.account_of(caller)


@router.get("/credits", response_model=CreditsOut)
async def my_credits(
    user: CreditReader,
    session: ReadSessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> CreditsOut:
    """The balance and the ledger, newest entry first."""
    return await credits.balance_and_ledger(session, user.id, cursor=cursor, limit=limit)
