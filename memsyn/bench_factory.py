"""Turn a validated bench file into a ``Bench`` of connected drivers.

The ``sim`` backend builds the simulated bench (the real drivers on simulated instruments,
with a virtual clock); the ``visa`` backend connects to the real instruments. Connecting
turns no output on.
"""

from __future__ import annotations

import logging
import math

from instruments.bench import Bench
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


def _open_visa(config: BenchConfig) -> Bench:
    from instruments.digital_output import Luci10DigitalOutput, ManualControl
    from instruments.femto_dhpca100 import FemtoDHPCA100
    from instruments.keysight_33500b import Keysight33500B
    from instruments.keysight_m9601a import KeysightM9601A
    from instruments.rs_rte1104 import RohdeSchwarzRTE1104

    limits = limits_of(config)
    entries = config.instruments
    opened: list = []

    def connect(role: str, factory):
        try:
            instrument = factory()
        except (InstrumentError, OSError, ValueError) as error:
            _close_all(opened)
            raise UsageError(
                f"cannot connect to the {role} ({entries[role].resource or 'no resource'}) of "
                f"bench {config.name}: {error}; check the address in {config.path} and that "
                f"the instrument is on"
            ) from None
        except Exception as error:  # noqa: BLE001 - pyvisa raises many types; report them all
            _close_all(opened)
            raise UsageError(
                f"cannot connect to the {role} of bench {config.name} "
                f"({type(error).__name__}: {error}); check {config.path} and the VISA installation"
            ) from None
        opened.append(instrument)
        return instrument

    generator = connect("generator", lambda: Keysight33500B(
        entries["generator"].resource, limits=limits, device_load_ohm=math.inf))
    channel = getattr(generator, f"ch_{entries['generator'].settings.get('channel', 1)}")
    # The load setting decides how programmed values map to the output voltage. The driver's
    # safety checks depend on it, so it is set before any protocol programs a level.
    channel.output_load = "INF" if config.generator_load == "INF" else 50.0
    scope = connect("scope", lambda: RohdeSchwarzRTE1104(entries["scope"].resource))
    clock = MonotonicClock()
    smu = connect("smu", lambda: KeysightM9601A(
        entries["smu"].resource, limits, clock=clock, options=entries["smu"].settings.get("options", "")))

    amplifier_settings = entries["amplifier"].settings
    if amplifier_settings["control"] == "luci10":
        control = connect("amplifier", lambda: Luci10DigitalOutput(amplifier_settings.get("adapter_id")))
    else:
        control = ManualControl()
    amplifier = connect("amplifier", lambda: FemtoDHPCA100(
        control, gain_v_per_a=config.amplifier_gain_v_per_a, mode=config.amplifier_mode))

    return Bench(
        name=config.name,
        backend="visa",
        smu=smu,
        generator=generator,
        amplifier=amplifier,
        scope=scope,
        limits=limits,
        clock=clock,
    )


def _close_all(instruments: list) -> None:
    for instrument in instruments:
        closer = getattr(instrument, "close", None) or getattr(getattr(instrument, "adapter", None), "close", None)
        if closer is None:
            continue
        try:
            closer()
        except Exception as error:  # noqa: BLE001 - keep closing the others
            log.error("closing %s failed: %s", type(instrument).__name__, error)
