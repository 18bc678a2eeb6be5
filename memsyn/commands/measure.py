"""`memsyn measure`: not implemented yet."""

from memsyn.errors import NotImplementedCommand


def register(subparsers) -> None:
    parser = subparsers.add_parser("measure", help="(not implemented yet)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    raise NotImplementedCommand("'memsyn measure' is not implemented in this version")
