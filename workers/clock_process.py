"""Imported by the clock process only (``periodiq workers.actors workers.clock_process``).

periodiq sets up its logging before it imports its modules; this formats those lines as
``LOG_FORMAT`` says (``psymatch.logs``) at INFO (``LOG_LEVEL`` chooses another level), and
moves the line periodiq writes each time it schedules a job that runs more than once an
hour (the outbox relay: one line a minute) to DEBUG; ``LOG_LEVEL=DEBUG`` shows them again.
The workers do the same with periodiq's "Processing ..." line (``workers/observability.py``).
"""

from psymatch import logs

logs.setup(default_level="INFO")
logs.quiet_frequent_schedules()
