from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from pixelfleet.accounts import service as accounts
from pixelfleet.accounts.schemas import RefreshRequest, RegisterRequest, TokenPair, UserOut
from pixelfleet.api.deps import ContextDep, SessionDep

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
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    ctx: ContextDep,
    session: SessionDep,
) -> TokenPair:
    """Log in with the OAuth2 password form (`username` is the email)."""
    async with ctx.read_sessions() as reader:  # takes no lock, released before tokens are written
        user = await accounts.authenticate(reader, form.username, form.password)
    return await accounts.start_login(session, user, form.password, ctx.signer, ctx.refresh_ttl)


@router.post("/refresh", response_model=TokenPair)
async def refresh(body: RefreshRequest, ctx: ContextDep, session: SessionDep) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once; using one twice
    signs out every session of that login. A login lasts `PIXELFLEET_REFRESH_TOKEN_DAYS`."""
    outcome = await accounts.rotate_refresh_token(session, body.refresh_token, ctx.signer)
    if outcome.error is not None:
        await session.commit()  # keep the family revocation
        raise outcome.error
    assert outcome.tokens is not None
    return outcome.tokens


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """End a login: its refresh tokens stop working. Access tokens already issued stay valid
    until they expire (`PIXELFLEET_ACCESS_TOKEN_MINUTES`)."""
    await accounts.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
