from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(min_length=8, max_length=256, examples=["violet kettle harbour 42"])


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(
        min_length=1, max_length=256, examples=["violet kettle harbour 42"]
    )
    new_password: str = Field(min_length=8, max_length=256, examples=["amber lantern orchard 17"])


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=320, examples=["ada@example.com"])


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1,
        max_length=512,
        description="The `token` query parameter of the mailed link.",
        examples=["q9Hc0v2bLm8TqW0zR4sY7nP1cD5fH6gK-aE9uVwXoJx"],
    )
    new_password: str = Field(min_length=8, max_length=256, examples=["amber lantern orchard 17"])


class EmailVerificationConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1,
        max_length=2048,
        description="The `token` query parameter of the mailed link.",
        examples=["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl"],
    )


class MailAccepted(BaseModel):
    detail: str


class SignUpAccepted(BaseModel):
    email: str = Field(description="The email, as the account would have it (lower case).")
    detail: str


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(
        min_length=1, max_length=512, examples=["Jx3kQ9v_2bLm8TqW0zR4sY7nP1cD5fH6gK-aE9uVwXo"]
    )


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the OAuth2 token type)
    expires_in: int = Field(description="Seconds until the access token expires.")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: Literal["user", "admin"]
    is_active: bool
    balance: int | None = Field(
        description="The credit balance; null for an API key without the `credits:read` scope."
    )
    email_verified_at: datetime | None = Field(
        default=None,
        description="When the account confirmed its email (a mailed link); null: not yet.",
    )
    created_at: datetime
