"""The ``memsyn`` command line: global options and dispatch to the subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from memsyn import __version__
from memsyn.commands import COMMANDS
from memsyn.errors import NotImplementedCommand, UsageError
from memsyn.logging_setup import configure_logging

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="memsyn",
        description=(
            "Characterise an SrTiO3 memristive synapse on a real or simulated bench, fit its "
            "parameters, and simulate it in an m-STPN network that plays Atari Pong."
        ),
    )
    parser.add_argument("--version", action="version", version=f"memsyn {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="show debug messages (-vv: from every library too)",
    )
    parser.add_argument("--quiet", action="store_true", help="show warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"memsyn.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)

    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2

    try:
        return int(handler(args) or 0)
    except NotImplementedCommand as error:
        print(f"memsyn: {error}", file=sys.stderr)
        return 3
    except UsageError as error:
        print(f"memsyn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memsyn: interrupted", file=sys.stderr)
        return 130
