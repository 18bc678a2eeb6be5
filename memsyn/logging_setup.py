"""Logging configuration for the command line; library modules only create module loggers."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm


class TqdmHandler(logging.Handler):
    """Write log records through ``tqdm.write`` so that they do not break progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def configure_logging(verbosity: int = 0, quiet: bool = False) -> None:
    """Send log records to standard error at a level chosen by the global options.

    ``--quiet`` shows warnings and errors only; the default shows progress information;
    ``-v`` adds debug messages from memsyn; ``-vv`` adds debug messages from every library.
    """
    if quiet:
        level = logging.WARNING
    elif verbosity >= 1:
        level = logging.DEBUG
    else:
        level = logging.INFO

    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level if verbosity >= 2 else max(level, logging.WARNING))

    for package in ("memsyn", "instruments", "protocols", "fitting", "sim_backend", "stpn"):
        logging.getLogger(package).setLevel(level)

    # PyMeasure warns at import about optional packages (ZMQ, cloudpickle, IPython) that
    # memsyn does not use; show its messages only from -vv on.
    if verbosity < 2:
        logging.getLogger("pymeasure").setLevel(logging.ERROR)


def progress_enabled(quiet: bool) -> bool:
    """Return whether progress bars should be drawn: not with --quiet, not without a terminal."""
    return not quiet and sys.stderr.isatty()
