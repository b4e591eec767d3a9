from __future__ import annotations

from pixelfleet.errors import Conflict


class CannotDeactivateSelf(Conflict):
    slug = "cannot-deactivate-self"
    title = "An administrator cannot deactivate their own account"


class AdjustmentKeyReused(Conflict):
    slug = "idempotency-key-reused"
    title = "Idempotency key already used for another request"
