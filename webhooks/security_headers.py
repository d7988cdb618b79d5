"""Security headers on every response of the web app.

* ``X-Content-Type-Options: nosniff``: a browser renders a response only as its declared type;
* ``Content-Security-Policy``: nothing may frame a page (``frame-ancestors 'none'``; plus
  ``X-Frame-Options: DENY`` for old browsers), and the pages load nothing but their own
  inline styles and post their forms only to this site (the link confirmation page);
  a response that sets its own policy (``/dev/mail``'s sandboxed HTML) keeps it, with
  ``frame-ancestors 'none'`` added when missing;
* ``Referrer-Policy: no-referrer``: a link token in the URL never leaves in a Referer;
* ``Cache-Control: no-store``: no browser or proxy keeps a copy. Confirmation pages,
  ``/dev/mail`` and JSON answers may carry personal data, and the app serves no static
  assets, so every response gets it.
"""

from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _add(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers[name] = value
    response.headers.pop("Pragma", None)
    policy = response.headers.get("Content-Security-Policy")
    if not policy:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    elif "frame-ancestors" not in policy:
        response.headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
    return response


def register(app: Flask) -> None:
    """Add the headers to every response of ``app`` (idempotent)."""
    if _add not in app.after_request_funcs.get(None, []):
        app.after_request(_add)
