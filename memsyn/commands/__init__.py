"""Subcommands of the ``memsyn`` command line, one module each.

Every module defines ``register(subparsers)``, which adds its parser and sets ``handler``
to a function that takes the parsed arguments and returns the exit status.
"""

COMMANDS = ("bench", "measure", "fit", "pong", "energy", "report", "demo")
