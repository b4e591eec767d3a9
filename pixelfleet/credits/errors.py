from __future__ import annotations

from pixelfleet.errors import Conflict, PixelFleetError


class InsufficientCredits(PixelFleetError):
    status = 402
    slug = "insufficient-credits"
    title = "Insufficient credits"
    example_detail = "This task costs 4 credits and the balance is 1. Buy credits to continue."


class BalanceTooLow(Conflict):
    slug = "balance-too-low"
    title = "The balance cannot go below zero"


class BalanceTooHigh(Conflict):
    slug = "balance-too-high"
    title = "The balance would exceed its maximum"
