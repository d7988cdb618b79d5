"""``psymatch simulate``: the real operations for weeks on a simulated clock (tools/simulate).

Prints one JSON object (the figures, the model and the rules used); ``--report DIR``
writes an HTML page with plots. Exit code 1 when an invariant was breached, 2 when the
``bench`` extra (SMTP sink, plots) is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys


def _model_options(parser: argparse.ArgumentParser) -> None:
    """One option per number of the behaviour model. Without tools/ (an installation
    without the bench extra) there are none: the command refuses to run there anyway."""
    try:
        from tools.simulate.model import ASSUMED, Model
    except ImportError:
        return

    group = parser.add_argument_group("behaviour model (defaults: issue 16's table)")
    for item in dataclasses.fields(Model):
        flag = "--" + item.name.replace("_", "-")
        default = item.default
        note = " (assumed)" if item.name in ASSUMED else ""
        if isinstance(default, tuple):
            group.add_argument(
                flag, type=_floats, default=None, metavar="A,B,C",
                help=f"default {','.join(str(v) for v in default)}{note}",
            )  # fmt: skip
        else:
            kind = float if default is None or isinstance(default, float) else int
            shown = "5%% of --therapists" if default is None else default
            group.add_argument(flag, type=kind, default=None, help=f"default {shown}{note}")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None


def register(commands) -> None:
    sim = commands.add_parser(
        "simulate", help="run the real operations for weeks on a simulated clock (JSON)"
    )
    sim.add_argument("--therapists", type=int, required=True)
    sim.add_argument("--weeks", type=int, required=True)
    sim.add_argument("--seed", type=int, required=True)
    sim.add_argument("--policy", choices=("auto", "manual"), default="auto")
    sim.add_argument("--json", action="store_true", help="one line of JSON")
    sim.add_argument("--report", metavar="DIR", help="write index.html and PNG plots to DIR")
    sim.add_argument(
        "--sink", choices=("capture", "smtp"), default="capture",
        help="capture: messages built and counted in-process (default); smtp: sent to an "
        "aiosmtpd counting sink over loopback (slower)",
    )  # fmt: skip
    sim.add_argument(
        "--database-url", metavar="URL",
        help="an empty scratch database (default: a SQLite file in a temporary directory)",
    )  # fmt: skip
    rules = sim.add_argument_group("psymatch's rules (default: the configured settings)")
    rules.add_argument("--bundle-size", type=int, help="MAX_ANFRAGE_SIZE")
    rules.add_argument("--round-min-size", type=int, help="ROUND_MIN_SIZE")
    rules.add_argument("--cooling-weeks", type=int, help="COOLING_PERIOD_WEEKS")
    rules.add_argument("--parallel-cap", type=int, help="MAX_PARALLEL_ANFRAGEN")
    rules.add_argument(
        "--follow-up-mode", choices=("call", "reminder", "reminder_then_call"),
        help="FOLLOW_UP_MODE",
    )  # fmt: skip
    rules.add_argument("--expiry-days", type=int, help="ANFRAGE_EXPIRY_DAYS")
    _model_options(sim)
    sim.set_defaults(func=cmd_simulate)


def cmd_simulate(args) -> int:
    from cli import main as cli_main

    cli_main._as_local_tool("psymatch simulate")
    from tools.simulate import RULES, Model, Simulation, SimulationError

    changes = {
        item.name: getattr(args, item.name)
        for item in dataclasses.fields(Model)
        if getattr(args, item.name, None) is not None
    }
    try:
        model = dataclasses.replace(Model(), **changes)
        progress = None
        if not args.json:

            def progress(day, total):  # noqa: E306
                if day % 7 == 0 or day == total:
                    print(f"simulate: day {day} of {total}", file=sys.stderr, flush=True)

        simulation = Simulation(
            therapists=args.therapists,
            weeks=args.weeks,
            seed=args.seed,
            policy=args.policy,
            model=model,
            rules={name: getattr(args, name) for name in RULES},
            database_url=args.database_url,
            progress=progress,
            sink=args.sink,
        )
        result = simulation.run()
    except SimulationError as exc:
        raise cli_main.CommandError(str(exc)) from None
    out = {**result.figures, "model": result.model, "rules": result.rules}
    if result.breaches:
        out["breaches"] = result.breaches[:50]
    if args.report:
        from tools.simulate import report

        out["report"] = str(report.write(result, args.report))
    print(json.dumps(out, default=str) if args.json else json.dumps(out, indent=2, default=str))
    for line in result.breaches[:20]:
        print(f"simulate: invariant breached: {line}", file=sys.stderr)
    return 1 if result.breaches else 0
