from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from pixelfleet.accounts import service as accounts
from pixelfleet.accounts.errors import WeakPassword, WrongPassword
from pixelfleet.accounts.schemas import PasswordChange, UserOut
from pixelfleet.api.deps import (
    CreditReader,
    CurrentCaller,
    ReadSessionDep,
    SessionCaller,
    SessionDep,
)
from pixelfleet.api.problems import problem_responses
from pixelfleet.api.rate_limits import RATE_LIMITED, limit_password_guesses
from pixelfleet.credits import service as credits
from pixelfleet.credits.schemas import CreditsOut
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/v1", tags=["account"])


@router.get("/me", response_model=UserOut)
async def get_me(caller: CurrentCaller) -> UserOut:
    """The caller's account, for any credential. The `balance` is null for an API key without
    `credits:read`."""
    return accounts.account_of(caller)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(limit_password_guesses)],
    responses={**RATE_LIMITED, **problem_responses(WrongPassword, WeakPassword)},
)
async def change_password(
    body: PasswordChange, caller: SessionCaller, session: SessionDep
) -> Response:
    """Change the account's password (an interactive login only, never an API key). Every
    other login ends at once; yours goes on: refresh its tokens (`POST /v1/auth/refresh`) for
    an access token that works, as the one you hold now stops working too. API keys stay as
    they are. Each try with a wrong current password counts as a failed login (429 past
    the login limits)."""
    await accounts.change_password(session, caller, body.current_password, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/credits", response_model=CreditsOut)
async def my_credits(
    user: CreditReader,
    session: ReadSessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> CreditsOut:
    """The balance and the ledger, newest entry first."""
    return await credits.balance_and_ledger(session, user.id, cursor=cursor, limit=limit)
