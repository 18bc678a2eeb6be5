"""Turn a validated bench file into a ``Bench`` of connected drivers.

The ``sim`` backend builds the simulated bench (the real drivers on simulated instruments,
with a virtual clock); the ``visa`` backend connects to the real instruments. Connecting
turns no output on.
"""

from __future__ import annotations

import logging
import math

from instruments.bench import Bench, close_instrument
from instruments.clock import MonotonicClock
from instruments.errors import InstrumentError
from instruments.safety import SafetyLimits
from memsyn.bench_config import BenchConfig
from memsyn.errors import UsageError

log = logging.getLogger(__name__)


def limits_of(config: BenchConfig) -> SafetyLimits:
    """Return the device safety limits of a bench file."""
    return SafetyLimits(
        max_voltage_v=config.max_voltage_v,
        min_voltage_v=config.min_voltage_v,
        max_current_a=config.max_current_a,
    )


def open_bench(config: BenchConfig, seed: int | None = None) -> Bench:
    """Connect to every instrument of ``config`` and return the bench.

    ``seed`` overrides the bench file's ``[sim] seed`` on the simulated bench and is ignored
    on a real one.
    """
    if config.backend == "sim":
        bench = _open_simulated(config, seed)
    else:
        bench = _open_visa(config)
    bench.description.update(config.as_header())
    bench.description.update(_wiring(config))
    log.info("bench %s open (backend %s)", bench.name, bench.backend)
    return bench


def _wiring(config: BenchConfig) -> dict:
    generator = config.instruments["generator"].settings
    scope = config.instruments["scope"].settings
    return {
        "generator_channel": generator.get("channel", 1),
        "scope_current_channel": scope.get("current_channel", 1),
        "scope_voltage_channel": scope.get("voltage_channel", 2),
    }


def _open_simulated(config: BenchConfig, seed: int | None) -> Bench:
    from sim_backend.bench import build_simulated_bench

    chosen_seed = seed
    if chosen_seed is None:
        chosen_seed = config.seed if config.seed is not None else 0
    bench = build_simulated_bench(
        limits=limits_of(config),
        amplifier_gain_v_per_a=config.amplifier_gain_v_per_a,
        amplifier_mode=config.amplifier_mode,
        seed=chosen_seed,
        generator_load=config.generator_load,
    )
    bench.name = config.name
    bench.description["seed"] = chosen_seed
    return bench


#: Order in which the instruments of a real bench are connected.
CONNECT_ORDER = ("generator", "scope", "smu", "amplifier")

NO_VISA_LIBRARY = (
    "no VISA library was found; install NI-VISA or Keysight IO Libraries Suite, or run "
    "'pip install pyvisa-py' for instruments on LAN or USB"
)


class ConnectionFailure(Exception):
    """One instrument of a real bench could not be connected. The message states what to do."""

    def __init__(self, role: str, message: str):
        self.role = role
        super().__init__(message)


def _open_visa(config: BenchConfig) -> Bench:
    limits = limits_of(config)
    clock = MonotonicClock()
    opened: dict = {}
    try:
        for role in CONNECT_ORDER:
            opened[role] = connect_instrument(config, role, limits, clock)
    except ConnectionFailure as failure:
        _close_all(opened.values())
        raise UsageError(str(failure)) from None

    return Bench(
        name=config.name,
        backend="visa",
        smu=opened["smu"],
        generator=opened["generator"],
        amplifier=opened["amplifier"],
        scope=opened["scope"],
        limits=limits,
        clock=clock,
    )


def probe_instruments(config: BenchConfig) -> list[tuple[str, object | None, str | None]]:
    """Connect to each instrument of a real bench on its own.

    Returns ``(role, instrument, None)`` for each instrument that connected and
    ``(role, None, message)`` for each that did not, so that one unreachable instrument
    does not hide the state of the others. The caller closes what connected.
    """
    limits = limits_of(config)
    clock = MonotonicClock()
    results: list[tuple[str, object | None, str | None]] = []
    for role in CONNECT_ORDER:
        try:
            results.append((role, connect_instrument(config, role, limits, clock), None))
        except ConnectionFailure as failure:
            results.append((role, None, str(failure)))
    return results


def connect_instrument(config: BenchConfig, role: str, limits: SafetyLimits, clock):
    """Connect the driver of one role of a real bench; raise ConnectionFailure if it fails.

    Connecting turns no output on. The generator's load setting is written, because the
    driver's safety checks depend on it.
    """
    entry = config.instruments[role]
    try:
        return _CONNECTORS[role](config, entry, limits, clock)
    except (InstrumentError, OSError, ValueError) as error:
        raise ConnectionFailure(role, _connection_advice(config, role, error)) from None
    except Exception as error:  # noqa: BLE001 - pyvisa and vendor libraries raise many types
        raise ConnectionFailure(
            role, _connection_advice(config, role, f"{type(error).__name__}: {error}")
        ) from None


def _connection_advice(config: BenchConfig, role: str, error) -> str:
    resource = config.instruments[role].resource or "no resource"
    # pyvisa raises "Could not locate a VISA implementation" when no VISA library is
    # installed, and then the address is not the problem.
    if "VISA implementation" in str(error):
        return f"cannot connect to the {role} ({resource}): {NO_VISA_LIBRARY}"
    return (
        f"cannot connect to the {role} ({resource}) of bench {config.name}: {error}; check its "
        f"address in {config.path}, the cable, and that the instrument is on"
    )


def _connect_generator(config, entry, limits, clock):
    from instruments.keysight_33500b import Keysight33500B

    generator = Keysight33500B(entry.resource, limits=limits, device_load_ohm=math.inf)
    channel = getattr(generator, f"ch_{entry.settings.get('channel', 1)}")
    channel.output_load = "INF" if config.generator_load == "INF" else 50.0
    return generator


def _connect_scope(config, entry, limits, clock):
    from instruments.rs_rte1104 import RohdeSchwarzRTE1104

    return RohdeSchwarzRTE1104(entry.resource)


def _connect_smu(config, entry, limits, clock):
    from instruments.keysight_m9601a import KeysightM9601A

    return KeysightM9601A(entry.resource, limits, clock=clock, options=entry.settings.get("options", ""))


def _connect_amplifier(config, entry, limits, clock):
    from instruments.digital_output import Luci10DigitalOutput, ManualControl
    from instruments.femto_dhpca100 import FemtoDHPCA100

    if entry.settings["control"] == "luci10":
        control = Luci10DigitalOutput(entry.settings.get("adapter_id"))
    else:
        control = ManualControl()
    return FemtoDHPCA100(control, gain_v_per_a=config.amplifier_gain_v_per_a, mode=config.amplifier_mode)


_CONNECTORS = {
    "generator": _connect_generator,
    "scope": _connect_scope,
    "smu": _connect_smu,
    "amplifier": _connect_amplifier,
}


def _close_all(instruments) -> None:
    for instrument in instruments:
        close_instrument(instrument, type(instrument).__name__)
