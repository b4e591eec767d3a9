from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from pixelfleet.accounts import email_verification, password_resets
from pixelfleet.accounts import service as accounts
from pixelfleet.accounts.errors import (
    AccountDisabled,
    InvalidCredentials,
    InvalidToken,
    RefreshTokenReused,
    ResetLinkInvalid,
    VerificationLinkInvalid,
    WeakPassword,
)
from pixelfleet.accounts.schemas import (
    EmailVerificationConfirm,
    MailAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    RegisterRequest,
    SignUpAccepted,
    TokenPair,
)
from pixelfleet.api.deps import ContextDep, SessionDep
from pixelfleet.api.problems import problem_responses
from pixelfleet.api.rate_limits import (
    RATE_LIMITED,
    limit_login,
    limit_mail_to,
    limit_registration,
)

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignUpAccepted,
    dependencies=[Depends(limit_registration)],
    responses=RATE_LIMITED,
)
async def register(body: RegisterRequest, ctx: ContextDep, session: SessionDep) -> SignUpAccepted:
    """Sign up, then log in with `POST /v1/auth/token`. The answer is the same whether or not
    the email already had an account, so that nobody can find out who has one: if yours did,
    log in with its password. A password from the lists of breached passwords, or one that is
    easy to guess, is refused (422 `weak-password`). Where the server requires verified
    emails, a new account is mailed a link to open before it may submit tasks or pay."""
    await email_verification.sign_up_and_verify(session, ctx.settings, body.email, body.password)
    return SignUpAccepted(
        email=accounts.normalise_email(body.email),
        detail="If this email had no account, it has one now: log in with POST /v1/auth/token.",
    )


@router.post(
    "/token",
    response_model=TokenPair,
    dependencies=[Depends(limit_login)],
    responses={**RATE_LIMITED, **problem_responses(InvalidCredentials, AccountDisabled)},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "example": {
                        "username": "ada@example.com",
                        "password": "violet kettle harbour 42",
                    }
                }
            }
        }
    },
)
async def log_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    ctx: ContextDep,
    session: SessionDep,
) -> TokenPair:
    """Log in with the OAuth2 password form (`username` is the email)."""
    async with ctx.read_sessions() as reader:  # takes no lock, released before tokens are written
        user = await accounts.authenticate(reader, form.username, form.password)
    return await accounts.start_login(session, user, form.password, ctx.signer, ctx.refresh_ttl)


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=problem_responses(InvalidToken, RefreshTokenReused, AccountDisabled),
)
async def refresh(body: RefreshRequest, ctx: ContextDep, session: SessionDep) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once; using one twice
    signs out every session of that login. A login lasts `PIXELFLEET_REFRESH_TOKEN_DAYS`."""
    outcome = await accounts.rotate_refresh_token(session, body.refresh_token, ctx.signer)
    if outcome.error is not None:
        await session.commit()  # keep the family revocation
        raise outcome.error
    assert outcome.tokens is not None
    return outcome.tokens


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MailAccepted,
    responses=RATE_LIMITED,
)
async def ask_for_password_reset(
    body: PasswordResetRequest, request: Request, ctx: ContextDep, session: SessionDep
) -> MailAccepted:
    """Mail a password reset link to the account of this email. The answer is the same
    whether or not the email has an account. The link works once, for
    `PIXELFLEET_PASSWORD_RESET_MINUTES` (30); its `token` query parameter goes to
    `POST /v1/auth/password-reset/confirm`."""
    await limit_mail_to(request, ctx, body.email)
    await password_resets.ask_for_reset(session, ctx.settings, body.email)
    return MailAccepted(
        detail="If this email has an account, a link to reset its password is on its way."
    )


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(ResetLinkInvalid, WeakPassword, AccountDisabled),
)
async def reset_password(body: PasswordResetConfirm, session: SessionDep) -> Response:
    """Set a new password with the token of a mailed reset link. Every login of the account
    ends (every token issued before stops working): log in again with the new password."""
    await password_resets.reset_password(session, body.token, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(VerificationLinkInvalid),
)
async def verify_email(
    body: EmailVerificationConfirm, ctx: ContextDep, session: SessionDep
) -> Response:
    """Confirm the account's email with the token of the mailed link (no login needed;
    confirming twice changes nothing)."""
    await email_verification.verify_email(session, ctx.settings, body.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """End a login: its refresh tokens stop working. Access tokens already issued stay valid
    until they expire (`PIXELFLEET_ACCESS_TOKEN_MINUTES`)."""
    await accounts.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
