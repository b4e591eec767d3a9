"""`pixelfleet smoke-test`: a running deployment checked end to end."""

from __future__ import annotations

import click


@click.command("smoke-test")
@click.argument("url")
@click.option("--timeout", type=click.FloatRange(min=1), default=120, show_default=True)
@click.option("--email", envvar="PIXELFLEET_SMOKE_EMAIL", help="Sign in as this account.")
@click.option(
    "--password", envvar="PIXELFLEET_SMOKE_PASSWORD", help="Its password (else a new account)."
)
def smoke_test(url: str, timeout: float, email: str | None, password: str | None) -> None:
    """Check a running deployment at URL end to end: health, sign-in, and a tiny image through
    the pipeline. Without --email it signs up a throwaway account."""
    import httpx

    from pixelfleet.smoke import Account, SmokeTestFailed, run_smoke_test

    if bool(email) != bool(password):
        raise click.UsageError("--email and --password go together")
    account = Account(email, password) if email and password else None
    try:
        run_smoke_test(url, timeout=timeout, account=account, say=click.echo)
    except (SmokeTestFailed, httpx.HTTPError) as exc:
        raise click.ClickException(f"smoke test failed: {exc}") from exc
    click.echo("smoke test passed")
