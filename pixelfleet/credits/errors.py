from __future__ import annotations

from pixelfleet.errors import Conflict, PixelFleetError


class InsufficientCredits(PixelFleetError):
    status = 402
    slug = "insufficient-credits"
    title = "Insufficient credits"
    example_detail = "This task costs 4 credits, more than the balance. Buy credits to continue."

    @classmethod
    def for_cost(cls, cost: int) -> InsufficientCredits:
        # The balance itself is not told: whoever submits tasks (an API key with `tasks:write`)
        # may lack `credits:read`.
        return cls(
            f"This task costs {cost} credits, more than the balance. Buy credits to continue."
        )


class BalanceTooLow(Conflict):
    slug = "balance-too-low"
    title = "The balance cannot go below zero"


class BalanceTooHigh(Conflict):
    slug = "balance-too-high"
    title = "The balance would exceed its maximum"
