"""`pixelfleet admin`: accounts and credits, from the command line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from pixelfleet.cli.configuration import load_settings
from pixelfleet.cli.schema import migrate_to_head
from pixelfleet.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from pixelfleet.context import ProcessContext
    from pixelfleet.credits.service import LedgerAudit

T = TypeVar("T")


@click.group()
def admin() -> None:
    """Administration: accounts and credits."""


async def _in_transaction(
    settings: Settings, work: Callable[[ProcessContext, AsyncSession], Awaitable[T]]
) -> T:
    """Runs `work` in one transaction, in a process context of its own."""
    from pixelfleet.bootstrap import create_context
    from pixelfleet.db import unit_of_work

    ctx = create_context(settings)
    try:
        async with unit_of_work(ctx) as session:
            return await work(ctx, session)
    finally:
        await ctx.close()


async def _create_user(settings: Settings, email: str, password: str, role: str) -> str:
    from pixelfleet.accounts import service as accounts

    async def create(_ctx: ProcessContext, session: AsyncSession) -> str:
        # The operator who makes it vouches for its address.
        user = await accounts.register(
            session,
            email,
            password,
            signup_credits=settings.signup_credits,
            role=role,
            email_verified=True,
        )
        return str(user.id)

    return await _in_transaction(settings, create)


@admin.command("create-user")
@click.argument("email")
@click.option("--admin", "is_admin", is_flag=True, help="Give the account the admin role.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(email: str, is_admin: bool, password_stdin: bool) -> None:
    """Create an account (the database is migrated first if it needs to be)."""
    from pixelfleet.accounts.schemas import RegisterRequest
    from pixelfleet.errors import PixelFleetError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        RegisterRequest(email=email, password=password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    settings = load_settings()
    asyncio.run(migrate_to_head(settings))
    try:
        user_id = asyncio.run(
            _create_user(settings, email, password, "admin" if is_admin else "user")
        )
    except PixelFleetError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"created {'admin' if is_admin else 'user'} {email} ({user_id})")


def _os_user() -> str:
    """Who runs the command, for the audit trail (a container may have no name for its uid)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


async def _grant(settings: Settings, email: str, amount: int, note: str) -> int:
    from pixelfleet.accounts import service as accounts
    from pixelfleet.admin import service as admin_service

    async def grant(_ctx: ProcessContext, session: AsyncSession) -> int:
        user = await accounts.find_user(session, email)
        result = await admin_service.adjust_credits(
            session, admin_service.Actor.command_line(_os_user()), user.id, amount, note
        )
        return result.adjustment.balance_after

    return await _in_transaction(settings, grant)


@admin.command()
@click.argument("email")
@click.argument("amount", type=click.IntRange(min=1))
@click.option(
    "--note",
    default="granted by an administrator",
    show_default=True,
    help="Why: the ledger entry's note and the audit trail's reason (3 to 255 characters).",
)
def grant(email: str, amount: int, note: str) -> None:
    """Give an account credits (recorded in its ledger, and in the audit trail as
    `cli:<OS user>`)."""
    from pixelfleet.admin.schemas import CreditAdjustmentIn
    from pixelfleet.errors import PixelFleetError

    try:
        checked = CreditAdjustmentIn(amount=amount, reason=note)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        balance = asyncio.run(_grant(load_settings(), email, checked.amount, checked.reason))
    except PixelFleetError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"granted {amount} credits to {email}; balance is now {balance}")


async def _seed(
    settings: Settings, email: str, password: Callable[[], str | None]
) -> tuple[bool, bool]:
    """Whether the administrator was created, and whether the packs are on sale."""
    from pixelfleet.admin.seed import seed_first_admin

    async def seed(ctx: ProcessContext, session: AsyncSession) -> tuple[bool, bool]:
        created = await seed_first_admin(
            session, email, password, signup_credits=settings.signup_credits
        )
        return created, ctx.payments is not None

    return await _in_transaction(settings, seed)


@admin.command()
@click.option(
    "--admin-email",
    envvar="PIXELFLEET_SEED_ADMIN_EMAIL",
    required=True,
    help="The first administrator's email.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the administrator's password from standard input (else from "
    "PIXELFLEET_SEED_ADMIN_PASSWORD, else a prompt); needed only when the account is created.",
)
def seed(admin_email: str, password_stdin: bool) -> None:
    """Prepare an installation, idempotently (safe at every deploy): migrate the database,
    check the credit packs on sale (they come from PIXELFLEET_CREDIT_PACKS), and create the
    first administrator unless that account exists."""
    from pixelfleet.errors import PixelFleetError

    def password() -> str | None:
        if password_stdin:
            return sys.stdin.readline().rstrip("\n")
        given = os.environ.get("PIXELFLEET_SEED_ADMIN_PASSWORD")
        if given is None and sys.stdin.isatty():
            return str(
                click.prompt("Administrator's password", hide_input=True, confirmation_prompt=True)
            )
        return given

    settings = load_settings()
    asyncio.run(migrate_to_head(settings))
    try:
        created, on_sale = asyncio.run(_seed(settings, admin_email, password))
    except PixelFleetError as exc:
        raise click.ClickException(exc.detail) from exc
    for pack in settings.credit_packs:
        click.echo(
            f"pack {pack.id}: {pack.credits} credits for {pack.amount / 100:.2f} {pack.currency}"
        )
    if not on_sale:
        click.echo("payments are not configured: the packs are not on sale yet")
    click.echo(f"{'created' if created else 'kept'} the administrator {admin_email}")


async def _audit(settings: Settings) -> LedgerAudit:
    from pixelfleet.bootstrap import create_context
    from pixelfleet.credits.service import audit_ledger

    ctx = create_context(settings)
    try:
        async with ctx.read_sessions() as session:
            return await audit_ledger(session)
    finally:
        await ctx.close()


@admin.command()
def audit() -> None:
    """Check that every balance equals the sum of its ledger and none is below zero (read
    only: safe on a live database). Exits 1 and lists the accounts that do not."""
    result = asyncio.run(_audit(load_settings()))
    click.echo(f"checked {result.users} accounts and {result.entries} ledger entries")
    if result.balanced:
        click.echo("every balance equals the sum of its ledger")
        return
    for finding in result.findings:
        click.echo(
            f"{finding.email} ({finding.user_id}): balance {finding.balance}, "
            f"ledger sum {finding.ledger_sum}",
            err=True,
        )
    raise click.ClickException(f"{len(result.findings)} account(s) off their ledger")
