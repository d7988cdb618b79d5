"""The standard library's email policies, with header classes built once.

``email.headerregistry.HeaderRegistry`` builds a new class with ``type()`` for every
header it creates (``__getitem__``), whether set on a message being built or parsed
from one received: building one of psymatch's emails (about 15 headers) spent a sixth of
its time creating classes. A policy's ``header_factory`` is the documented hook for how
headers are made; the registry below makes each header's class once and then reuses it.
It also parses the MIME headers every part of every message repeats (``MIME-Version``,
``Content-Type: text/plain; charset="utf-8"``, the transfer encoding) once per value and
shares the header object, which is an immutable string: the library's parser is pure
Python, and those are nine of the fifteen headers parsed for an email built. Headers, parsing
and serialising are otherwise the library's own.
"""

from __future__ import annotations

import email.policy
from email.headerregistry import Address, HeaderRegistry

# The MIME headers each part of each message repeats, by their lower-case names; up to
# _REPEATED_KEPT of their values are kept parsed, then they are dropped and kept anew (a
# dict's single operations are atomic: the worker threads building emails share it).
_REPEATED = frozenset({"mime-version", "content-type", "content-transfer-encoding"})
_REPEATED_KEPT = 64


class OnceBuiltHeaderRegistry(HeaderRegistry):
    """``HeaderRegistry`` whose class for a header name is built on first use only, and
    which parses the MIME headers every message repeats once per value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._classes: dict[str, type] = {}
        self._headers: dict[tuple[str, str], object] = {}

    def map_to_type(self, name, cls):
        super().map_to_type(name, cls)
        self._classes.clear()
        self._headers.clear()

    def __getstate__(self):  # a message pickles its policy: the built classes cannot be
        return {k: v for k, v in self.__dict__.items() if k not in ("_classes", "_headers")}

    def __setstate__(self, state):
        self.__dict__.update(state, _classes={}, _headers={})

    def __getitem__(self, name):
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made

    def __call__(self, name, value):
        """The header ``name: value``; one of the few values every message repeats
        (``MIME-Version: 1.0``, a part's ``Content-Type`` and transfer encoding, and the
        sender ``From`` set as an ``Address``, which the library formats and parses again)
        is parsed once and then shared: a header object is an immutable string."""
        lower = name.lower()
        if lower == "from" and isinstance(value, Address):  # the sender: one per service
            key = (name, str(value))
        elif isinstance(value, str) and lower in _REPEATED:
            key = (name, value)
        else:
            return self[name](name, value)
        made = self._headers.get(key)
        if made is None:
            if len(self._headers) >= _REPEATED_KEPT:  # filled by multiparts' unique boundaries
                self._headers.clear()
            made = self._headers[key] = self[name](name, value)
        return made


# email.policy.SMTP and email.policy.default, with the registry above
SMTP = email.policy.SMTP.clone(header_factory=OnceBuiltHeaderRegistry())
DEFAULT = email.policy.default.clone(header_factory=OnceBuiltHeaderRegistry())
