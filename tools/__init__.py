"""Benchmarks, soak run and fault suite: tools around psymatch, not part of its runtime.

Nothing under ``workers/``, ``webhooks/``, ``operations/`` or ``console/`` imports this
package. Its extra dependencies are in the ``bench`` extra (``pip install -e '.[bench]'``).
"""
