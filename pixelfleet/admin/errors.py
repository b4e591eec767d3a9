from __future__ import annotations

from pixelfleet.errors import Conflict, PixelFleetError


class CannotDeactivateSelf(Conflict):
    slug = "cannot-deactivate-self"
    title = "An administrator cannot deactivate their own account"


class CannotEraseSelf(Conflict):
    slug = "cannot-erase-self"
    title = "An administrator cannot erase their own account here"


class AdjustmentKeyReused(Conflict):
    slug = "idempotency-key-reused"
    title = "Idempotency key already used for another request"


class SeedAdminIsNotAdmin(Conflict):
    slug = "seed-admin-is-not-admin"
    title = "The first administrator's email belongs to a user account"


class SeedPasswordMissing(PixelFleetError):
    status = 422
    slug = "password-required"
    title = "A password is needed to create the first administrator"
