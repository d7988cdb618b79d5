"""The fault suite (``psymatch faults``): real faults injected into the real pipeline.

``environment``  the parts: scratch PostgreSQL database, Redis, SMTP sink, a TCP proxy in
                 front of PostgreSQL, worker, relay controller and webhook server processes
``scenario``     the flow every fault runs: seed, round, sending, replies through the webhook
``checks``       counts after recovery: emails per Anfrage, replies per message, half rows
``faults``       one function per fault and ``run_suite``
"""

from .environment import FaultError

__all__ = ["FaultError"]
