"""The verbs staff, webhooks and actors share; each one transaction, each audited.

``bundles`` (rounds, preview, composition), ``responses`` (answers, outcomes,
closure, conflicts), ``searches`` (Platzsuche lifecycle), ``cooling``
(override), ``flags`` (rollout of automatic rounds). Errors are
``OperationError`` with the outcome codes of docs/domain.md §13.
"""

from .errors import OperationError

__all__ = ["OperationError"]
