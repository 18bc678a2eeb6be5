"""`memsyn bench check`: connect to every instrument of a bench and print its identification.

No output is turned on: the check only opens the connections (as every command does),
queries each instrument's identification and error queue, and closes them again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from memsyn.errors import UsageError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="check the instruments of a bench",
        description="Commands about the bench: the instruments, their addresses and limits.",
    )
    actions = parser.add_subparsers(dest="bench_command", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="connect to every instrument and print its identification (outputs stay off)",
        description=(
            "Connect to every instrument of the bench file, print its identification and "
            "the device limits, and report any instrument that does not answer. No output "
            "is turned on."
        ),
    )
    check.add_argument("--bench", metavar="FILE", type=Path, default=None,
                       help="bench file (default: benches/sim.toml, the simulated bench)")
    check.set_defaults(handler=run_check)
    parser.set_defaults(handler=_missing_action)


def _missing_action(args) -> int:
    raise UsageError("missing action: use 'memsyn bench check [--bench FILE]'")


def run_check(args) -> int:
    from memsyn.bench_config import default_bench_path, load_bench_config
    from memsyn.bench_factory import open_bench, probe_instruments

    path = args.bench if args.bench is not None else default_bench_path()
    config = load_bench_config(path)
    print(f"bench {config.name} ({config.backend}) from {path}")
    print(f"  limits: {config.min_voltage_v:g} V ... {config.max_voltage_v:g} V at the device, "
          f"current at most {config.max_current_a:g} A")

    if config.backend == "sim":
        bench = open_bench(config)
        connected = [(role, instrument, None) for role, instrument in bench.instruments().items()]
    else:
        bench = None
        connected = probe_instruments(config)

    failures = 0
    try:
        for role, instrument, problem in connected:
            if problem is None:
                try:
                    identity = identify(instrument)
                except Exception as error:  # noqa: BLE001 - report every instrument, then fail
                    problem = str(error)
            if problem is not None:
                log.error("check of the %s of bench %s failed: %s", role, config.name, problem)
                print(f"  {role:<10} FAILED: {problem}")
                failures += 1
            else:
                print(f"  {role:<10} {identity}")
    finally:
        if bench is not None:
            bench.close()
        else:
            _close_connected(connected)

    if failures:
        print(f"{failures} instrument(s) failed the check; see the messages above")
        return 1
    print("all instruments answered; no output was turned on")
    return 0


def _close_connected(connected) -> None:
    from instruments.bench import close_instrument

    for role, instrument, _ in connected:
        if instrument is not None:
            close_instrument(instrument, f"the {role}")


def identify(instrument) -> str:
    """Return an instrument's identification, queried without changing any setting.

    Uses ``identify()`` (the SMU), PyMeasure's ``id`` (``*IDN?``, the SCPI instruments) or,
    for the amplifier, which has no read-back, the setting the driver last wrote. Reads the
    error queue where the driver offers ``check_errors()``.
    """
    from instruments.femto_dhpca100 import FemtoDHPCA100

    if isinstance(instrument, FemtoDHPCA100):
        return (f"{instrument.name}: no identification query; set to "
                f"{instrument.setting.describe()} through {instrument.control.name}")
    if hasattr(instrument, "identify"):
        identity = instrument.identify()
    else:
        identity = instrument.id
    if hasattr(instrument, "check_errors"):
        instrument.check_errors()
    return str(identity).strip()
