"""Who may read the operational endpoints (``/metrics``, ``/status``; SECURITY.md).

One rule for the web app and the worker pool's metrics server: with ``METRICS_TOKEN`` set, a
request needs ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time); without
it the endpoints answer 404 in production and are open only in the laptop demo.
"""

from __future__ import annotations

import hmac

from psymatch import settings

ALLOWED, NOT_FOUND, UNAUTHORIZED = "allowed", "not_found", "unauthorized"


def decide(authorization: str | None) -> str:
    """``ALLOWED``, ``NOT_FOUND`` or ``UNAUTHORIZED`` for a request's Authorization header."""
    s = settings.get()
    token = s.METRICS_TOKEN
    if not token:
        return ALLOWED if s.demo_mode else NOT_FOUND
    scheme, _, given = (authorization or "").partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogatepass"), token.encode("utf-8")
    )
    return ALLOWED if ok else UNAUTHORIZED
