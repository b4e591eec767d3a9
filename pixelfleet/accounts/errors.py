from __future__ import annotations

from pixelfleet.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PixelFleetError,
    Unauthorized,
)


class EmailTaken(Conflict):
    slug = "email-taken"
    title = "Email already registered"


class InvalidCredentials(Unauthorized):
    slug = "invalid-credentials"
    title = "Invalid credentials"


class InvalidToken(Unauthorized):
    slug = "invalid-token"
    title = "Invalid or expired token"


class RefreshTokenReused(Unauthorized):
    slug = "refresh-token-reused"
    title = "Refresh token already used"


class WrongPassword(Forbidden):
    slug = "wrong-password"
    title = "Wrong password"


class ResetLinkInvalid(PixelFleetError):
    status = 400
    slug = "reset-link-invalid"
    title = "Reset link invalid"


class VerificationLinkInvalid(PixelFleetError):
    status = 400
    slug = "verification-link-invalid"
    title = "Verification link invalid"


class EmailNotVerified(Forbidden):
    slug = "email-not-verified"
    title = "Email not verified"


class AccountDisabled(Forbidden):
    slug = "account-disabled"
    title = "Account disabled"


class AdminRequired(Forbidden):
    slug = "admin-required"
    title = "Administrator role required"


class UserNotFound(NotFound):
    slug = "user-not-found"
    title = "User not found"


class InsufficientScope(Forbidden):
    slug = "insufficient-scope"
    title = "Insufficient scope"


class ApiKeyNotFound(NotFound):
    slug = "api-key-not-found"
    title = "API key not found"


class TooManyApiKeys(Conflict):
    slug = "too-many-api-keys"
    title = "Too many API keys"


class WeakPassword(InvalidInput):
    slug = "weak-password"
    title = "Password too weak"
