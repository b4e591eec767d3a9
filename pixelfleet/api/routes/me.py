from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

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
from pixelfleet.privacy import erasure
from pixelfleet.privacy.export import export_account
from pixelfleet.privacy.schemas import AccountErasure, AccountExport, ErasureAccepted

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


@router.get(
    "/me/export",
    response_model=AccountExport,
    responses={
        200: {
            "description": "The document, as a file to save "
            "(`Content-Disposition: attachment; filename=\"pixelfleet-export-<date>.json\"`).",
            "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
        }
    },
)
async def export_my_data(caller: SessionCaller, session: ReadSessionDep) -> JSONResponse:
    """Everything the account holds, as one JSON document (an interactive login only, never an
    API key): its profile, ledger, payments, tasks with their pipelines, outputs and webhook
    deliveries, presets, and the metadata of its assets, uploads and API keys. It holds no
    secret: no password hash, no key, no token, no webhook secret, no signed URL."""
    document = await export_account(session, caller.user)
    filename = f"pixelfleet-export-{document.exported_at.date().isoformat()}.json"
    return JSONResponse(
        document.model_dump(mode="json"),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.delete(
    "/me",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureAccepted,
    dependencies=[Depends(limit_password_guesses)],
    responses={**RATE_LIMITED, **problem_responses(WrongPassword)},
)
async def erase_my_account(
    body: AccountErasure, caller: SessionCaller, ctx: ContextDep, session: SessionDep
) -> ErasureAccepted:
    """Erase the account, for good (an interactive login only, never an API key), proving its
    password. Its queued tasks are cancelled and refunded, its running ones stopped; then its
    tasks, results, presets, assets, uploads, API keys and logins are deleted, and its stored
    files right after. Its payments and ledger are kept for accounting under an anonymised
    account: the email is free to sign up again. Every token and key stops working at once.
    Each try with a wrong password counts as a failed login (429 past the login limits)."""
    erased = await erasure.erase_own_account(session, caller.user, body.password, ctx.retention)
    return erased.accepted()


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
