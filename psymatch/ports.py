"""A free TCP port on loopback, for the local servers that benches, the fault suite,
the soak run and the tests start (the port is free when asked; take it at once)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
