from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from pixelfleet.accounts import service as accounts
from pixelfleet.accounts.schemas import RefreshRequest, RegisterRequest, TokenPair, UserOut
from pixelfleet.api.deps import ContextDep, CurrentUser, SessionDep

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def register(
    body: RegisterRequest, ctx: ContextDep, session: SessionDep, response: Response
) -> UserOut:
    user = await accounts.register(
        session, body.email, body.password, signup_credits=ctx.settings.signup_credits
    )
    response.headers["Location"] = "/v1/me"
    return UserOut.model_validate(user)


@router.post("/token", response_model=TokenPair)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], ctx: ContextDep, session: SessionDep
) -> TokenPair:
    """Log in with the OAuth2 password form (`username` is the email)."""
    user = await accounts.authenticate(session, form.username, form.password)
    return await accounts.issue_tokens(
        session, user, ctx.signer, timedelta(days=ctx.settings.refresh_token_days)
    )


@router.post("/refresh", response_model=TokenPair)
async def refresh(body: RefreshRequest, ctx: ContextDep, session: SessionDep) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once; using one twice
    signs out every session of that login."""
    outcome = await accounts.rotate_refresh_token(
        session, body.refresh_token, ctx.signer, timedelta(days=ctx.settings.refresh_token_days)
    )
    if outcome.error is not None:
        await session.commit()  # keep the family revocation
        raise outcome.error
    assert outcome.tokens is not None
    return outcome.tokens


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, user: CurrentUser, session: SessionDep) -> Response:
    await accounts.logout(session, user, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
