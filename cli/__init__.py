"""The top floor: the ``psymatch`` command (``cli.main``) and ``psymatch run`` (``cli.runner``)."""
