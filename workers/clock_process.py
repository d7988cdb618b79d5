"""Imported by the clock process only (``periodiq workers.actors workers.clock_process``).

periodiq sets up its logging before it imports its modules; this formats those lines as
``LOG_FORMAT`` says (``psymatch.logs``), keeping periodiq's ``--verbose`` level.
"""

from psymatch import logs

logs.setup()
