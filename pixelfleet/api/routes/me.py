from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from pixelfleet.accounts import email_verification
from pixelfleet.accounts import service as accounts
from pixelfleet.accounts.errors import WeakPassword, WrongPassword
from pixelfleet.accounts.schemas import MailAccepted, PasswordChange, UserOut
from pixelfleet.api.deps import (
    ContextDep,
    CreditReader,
    CurrentCaller,
    ReadSessionDep,
    SessionCaller,
    SessionDep,
)
from pixelfleet.api.problems import problem_responses
from pixelfleet.api.rate_limits import RATE_LIMITED, limit_mail_to, limit_password_guesses
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
    body: PasswordChange, caller: SessionCaller, ctx: ContextDep, session: SessionDep
) -> Response:
    """Change the account's password (an interactive login only, never an API key). Every
    other login ends at once; yours goes on: refresh its tokens (`POST /v1/auth/refresh`) for
    an access token that works, as the one you hold now stops working too. API keys stay as
    they are. Each try with a wrong current password counts as a failed login (429 past
    the login limits). The account is mailed a notice of the change."""
    await accounts.change_password(
        session,
        caller,
        body.current_password,
        body.new_password,
        product_name=ctx.settings.product_name,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/me/email-verification",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MailAccepted,
    responses=RATE_LIMITED,
)
async def resend_verification(
    request: Request, caller: SessionCaller, ctx: ContextDep, session: SessionDep
) -> MailAccepted:
    """Mail the account a new link that confirms its email (nothing is sent once it is
    confirmed: see `email_verified_at` in GET /v1/me). Limited, as every mailed link, per
    account and per client address."""
    await limit_mail_to(request, ctx, caller.user.email)
    await email_verification.mail_verification_link(session, ctx.settings, caller.user)
    email = caller.user.email
    return MailAccepted(detail=f"Unless it is confirmed already, a link is on its way to {email}.")


@router.get("/credits", response_model=CreditsOut)
async def my_credits(
    user: CreditReader,
    session: ReadSessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> CreditsOut:
    """The balance and the ledger, newest entry first."""
    return await credits.balance_and_ledger(session, user.id, cursor=cursor, limit=limit)
