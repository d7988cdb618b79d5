"""``psymatch placement ...``: placements awaiting the patient's confirmation (domain §0.10).

``list`` shows accepted patients whose initial-session outcome is not recorded yet;
``record`` records one outcome after a phone call with the patient (``stattgefunden``,
``passt_nicht``, ``kein_termin``), as the console's buttons do, with an audit row naming
``--actor``. A refusal prints its outcome code and exits 1; nothing is written then.
"""

from __future__ import annotations

import json

from psymatch.domain import vocab

from .anfragen import _connect, _refused
from .options import add_actor_argument


def cmd_list(args) -> int:
    from operations.placements import awaiting_confirmation

    problem = _connect()
    if problem:
        return _refused(args, "SCHEMA_OUTDATED", problem)
    rows = awaiting_confirmation()
    if args.json:
        print(json.dumps(rows, default=str, sort_keys=True))
        return 0
    if not rows:
        print("no placement awaits confirmation")
    for r in rows:
        sent = r["sent_at"].strftime("%Y-%m-%d") if r["sent_at"] else "not sent"
        print(
            f"search {r['platzsuche_id']}: patient {r['patient_id']} with therapist "
            f"{r['therapist_id']}, placement email {sent}"
            + (f" ({r['days']} days ago)" if r["days"] is not None else "")
        )
    return 0


def cmd_record(args) -> int:
    from operations.errors import OperationError
    from operations.placements import record_placement_outcome

    problem = _connect()
    if problem:
        return _refused(args, "SCHEMA_OUTDATED", problem)
    try:
        result = record_placement_outcome(
            args.platzsuche_id, args.outcome, actor=args.actor, source="telefon"
        )
    except OperationError as error:
        return _refused(args, error.code, error.message)
    if args.json:
        print(json.dumps({"ok": True, **result}, default=str, sort_keys=True))
    elif result["changed"]:
        print(f"search {args.platzsuche_id}: {args.outcome} recorded")
    else:
        print(f"search {args.platzsuche_id}: {result['recorded']} was recorded before, unchanged")
    return 0


def register(commands) -> None:
    """Add the ``placement`` command group to the CLI's subcommands."""
    group = commands.add_parser("placement", help="placements awaiting confirmation")
    actions = group.add_subparsers(dest="placement_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="accepted patients whose first session is open")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    record = actions.add_parser(
        "record", help="record the initial-session outcome reported by phone"
    )
    record.add_argument("platzsuche_id", type=int, metavar="PLATZSUCHE_ID")
    # argparse validates the choice; the operation checks again (INVALID_OUTCOME)
    record.add_argument("outcome", choices=sorted(vocab.VERMITTLUNGSERGEBNIS_LABELS))
    add_actor_argument(record)
    record.add_argument("--json", action="store_true")
    record.set_defaults(func=cmd_record)
