"""The operator's handler for CreditBindings: every `operator_resync_seconds` a binding's
status is made to say what its jobs spent (from the ledger: charged minus refunded), how many
were admitted under it, and whether the account it names is there (`Ready`). Admissions and
finished jobs refresh the spend at once (`refresh_spend`), so `kubectl get cb` keeps up."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from pixelfleet.credits import budgets
from pixelfleet.operator.admission import account_named
from pixelfleet.operator.resources import (
    CREDITBINDING_PLURAL,
    GROUP,
    VERSION,
    CreditBindingSpec,
    CreditBindingStatus,
)
from pixelfleet.operator.state import OperatorState
from pixelfleet.operator.status import ConditionStatus, condition, differs
from pixelfleet.operator.telemetry import CREDITBINDINGS, RESYNC, handler_run
from pixelfleet.settings import Settings

log = logging.getLogger(__name__)

RESYNC_SECONDS = Settings().operator_resync_seconds


def budget_name(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


async def refresh_spend(state: OperatorState, budget: str) -> None:
    """Writes a binding's spend now (best effort: the resync writes it anyway)."""
    namespace, name = budget.split("/", 1)
    try:
        async with state.ctx.read_sessions() as session:
            use = (await budgets.use_of(session, [budget]))[budget]
        await state.bindings.patch_status(
            namespace, name, {"spentCredits": use.spent, "admittedJobs": use.tasks}
        )
    except Exception:
        log.warning("could not write the spend of CreditBinding %s", budget, exc_info=True)


async def _readiness(
    state: OperatorState, spec: dict[str, Any]
) -> tuple[ConditionStatus, str, str]:
    try:
        parsed = CreditBindingSpec.model_validate(spec)
    except ValidationError as exc:
        return "False", "InvalidSpec", str(exc.errors())
    user = await account_named(state, parsed.account_email)
    if user is None:
        return "False", "AccountNotFound", f"No active account has {parsed.account_email}."
    return "True", "AccountFound", f"Jobs in this namespace are charged to {user.email}."


@kopf.timer(GROUP, VERSION, CREDITBINDING_PLURAL, interval=RESYNC_SECONDS)
async def resync_creditbinding(
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    state: OperatorState = memo["state"]
    with handler_run(CREDITBINDINGS, RESYNC):
        budget = budget_name(str(meta.get("namespace")), str(meta.get("name")))
        ready, reason, message = await _readiness(state, dict(spec))
        async with state.ctx.read_sessions() as session:
            use = (await budgets.use_of(session, [budget]))[budget]
        generation = meta.get("generation")
        previous = list(status.get("conditions") or [])
        wanted = CreditBindingStatus(
            spent_credits=use.spent,
            admitted_jobs=use.tasks,
            conditions=[condition("Ready", ready, reason, message, generation, previous)],
            observed_generation=generation,
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        if differs(dict(status), wanted):
            patch.status.update(wanted)
