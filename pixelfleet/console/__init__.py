"""The web console: a single page and its static files, served by the API (no build step)."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).parent / "static"

# Razorpay Checkout loads its script from checkout.razorpay.com (and its risk checks from
# cdn.razorpay.com), opens its form in a frame from api.razorpay.com and reports to its
# lumberjack hosts; nothing else outside this origin is ever loaded.
RAZORPAY_ORIGINS = "https://checkout.razorpay.com https://api.razorpay.com"
RAZORPAY_SCRIPTS = f"{RAZORPAY_ORIGINS} https://cdn.razorpay.com"
RAZORPAY_REPORTS = "https://lumberjack.razorpay.com https://lumberjack-metrics.razorpay.com"

def content_security_policy(
    storage_origin: str | None = None, public_origin: str | None = None
) -> str:
    """The console's policy; `storage_origin` is the storage's own address when that is not
    this origin (an S3 endpoint): direct uploads go to it, and results redirect to it.
    `public_origin` is the one results are linked under (`PIXELFLEET_PUBLIC_URL`, a CDN say)."""
    uploads = f" {storage_origin}" if storage_origin else ""
    images = "".join(f" {origin}" for origin in (storage_origin, public_origin) if origin)
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {RAZORPAY_SCRIPTS}",
            f"frame-src {RAZORPAY_ORIGINS}",
            f"connect-src 'self' {RAZORPAY_ORIGINS} {RAZORPAY_REPORTS}{uploads}",
            f"img-src 'self' blob: data: https://*.razorpay.com{images}",
            # Checkout styles the overlay it adds to the page with inline styles.
            "style-src 'self' 'unsafe-inline'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


CONTENT_SECURITY_POLICY = content_security_policy()


def security_headers(
    storage_origin: str | None = None, public_origin: str | None = None
) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(storage_origin, public_origin),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        # The page and its scripts are revalidated (ETag) on every load, so an upgrade shows
        # at once.
        "Cache-Control": "no-cache",
    }


SECURITY_HEADERS = security_headers()
