"""The API's interactive documentation, Swagger UI at `/docs` and ReDoc at `/redoc`, served
whole by this server: their scripts and styles come from the `fastapi-offline` wheel, so the
pages work where no CDN can be reached (an air-gapped cluster), and the pages start them from
scripts of their own, so no inline script is needed and the policy allows only this origin's."""

from __future__ import annotations

from html import escape

STATIC_PATH = "/docs/static"
"""Where the pages' scripts, styles and icon are served from."""

STATIC_PACKAGES: list[str | tuple[str, str]] = [
    ("fastapi_offline", "static"),  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js
    ("pixelfleet.api.docs_pages", "static"),  # the scripts that start them
]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # Both set styles at run time (ReDoc through <style> elements it writes).
        "style-src 'self' 'unsafe-inline'",
        # A response that is an image is previewed from a blob; both draw icons from data URLs.
        "img-src 'self' blob: data:",
        # ReDoc's search runs in a worker made from a blob.
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def _page(title: str, root: str, head: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" type="image/png" href="{root}{STATIC_PATH}/favicon.png">
{head}
</head>
<body>
{body}
</body>
</html>
"""


def _scripts(root: str, openapi_url: str, bundle: str, start: str) -> str:
    """The viewer's bundle, then the script that starts it on the document."""
    static = f"{root}{STATIC_PATH}"
    document = escape(root + openapi_url)
    return f"""<script src="{static}/{bundle}"></script>
<script src="{static}/{start}" data-openapi-url="{document}"></script>"""


def swagger_ui_page(title: str, root: str, openapi_url: str) -> str:
    """Swagger UI for the document at `openapi_url`, under the app's `root` path."""
    return _page(
        f"{title} - Swagger UI",
        root,
        f'<link rel="stylesheet" href="{root}{STATIC_PATH}/swagger-ui.css">',
        '<div id="swagger-ui"></div>\n'
        + _scripts(root, openapi_url, "swagger-ui-bundle.js", "swagger-start.js"),
    )


def redoc_page(title: str, root: str, openapi_url: str) -> str:
    """ReDoc for the document at `openapi_url`, under the app's `root` path."""
    return _page(
        f"{title} - ReDoc",
        root,
        "",
        '<div id="redoc"></div>\n'
        + _scripts(root, openapi_url, "redoc.standalone.js", "redoc-start.js"),
    )
