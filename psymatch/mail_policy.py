"""The standard library's email policies, with header classes built once.

``email.headerregistry.HeaderRegistry`` builds a new class with ``type()`` for every
header it creates (``__getitem__``), whether set on a message being built or parsed
from one received: building one of psymatch's emails (about 15 headers) spent a sixth of
its time creating classes. A policy's ``header_factory`` is the documented hook for how
headers are made; the registry below makes each header's class once and then reuses it.
Headers, parsing and serialising are otherwise the library's own.
"""

from __future__ import annotations

import email.policy
from email.headerregistry import HeaderRegistry


class OnceBuiltHeaderRegistry(HeaderRegistry):
    """``HeaderRegistry`` whose class for a header name is built on first use only."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._classes: dict[str, type] = {}

    def map_to_type(self, name, cls):
        super().map_to_type(name, cls)
        self._classes.clear()

    def __getstate__(self):  # a message pickles its policy: the built classes cannot be
        return {k: v for k, v in self.__dict__.items() if k != "_classes"}

    def __setstate__(self, state):
        self.__dict__.update(state, _classes={})

    def __getitem__(self, name):
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made


# email.policy.SMTP and email.policy.default, with the registry above
SMTP = email.policy.SMTP.clone(header_factory=OnceBuiltHeaderRegistry())
DEFAULT = email.policy.default.clone(header_factory=OnceBuiltHeaderRegistry())
