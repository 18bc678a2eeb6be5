"""Build a simulated bench: the simulated world with the real drivers on top of it.

This is the one place where ``sim_backend`` creates driver objects: the protocols receive
the same ``instruments.bench.Bench`` as on a real bench, with ``backend = "sim"`` and a
``VirtualClock``. The live simulation (device model, instruments, fault injectors) is
``bench.world``; ``bench.description`` holds only plain values for results-file headers.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from instruments.bench import Bench
from instruments.femto_dhpca100 import FemtoDHPCA100
from instruments.keysight_33500b import Keysight33500B
from instruments.keysight_m9601a import KeysightM9601A
from instruments.rs_rte1104 import RohdeSchwarzRTE1104
from instruments.safety import SafetyLimits
from sim_backend.amplifier_dhpca100 import SimulatedControlLines, SimulatedDHPCA100
from sim_backend.device_model import MemristorModel, MemristorParams
from sim_backend.faults import FaultInjector, WorldFaults
from sim_backend.generator_33500b import Simulated33500B
from sim_backend.scope_rte1104 import SimulatedRTE1104
from sim_backend.smu_m9601a import SimulatedM9601ASession
from sim_backend.virtual_clock import VirtualClock
from sim_backend.visa_adapter import SimulatedAdapter
from sim_backend.world import SimulatedWorld

log = logging.getLogger(__name__)

GENERATOR_RESOURCE = "SIM::KEYSIGHT33500B::INSTR"
SCOPE_RESOURCE = "SIM::RTE1104::INSTR"
SMU_RESOURCE = "SIM::M9601A::INSTR"

WIRING = (
    "SMU and generator channel 1 drive Pt (device voltage = SMU output + generator EMF); "
    "Ti into the DHPCA-100 input; DHPCA-100 output to scope channel 1; Pt voltage to scope "
    "channel 2"
)


def build_simulated_bench(
    limits: SafetyLimits,
    amplifier_gain_v_per_a: float,
    amplifier_mode: str,
    seed: int,
    params: MemristorParams | None = None,
    generator_load: str | float = "INF",
    name: str = "simulated bench",
    start_time_s: float = 0.0,
    smu_reset: bool = False,
) -> Bench:
    """Create the simulated world and the real drivers that talk to it.

    ``generator_load`` is the load setting of both generator outputs when the bench is
    built: ``"INF"`` or ohms, as if set on the front panel (``*RST`` sets 50 ohm).
    ``amplifier_gain_v_per_a`` and ``amplifier_mode`` are written through the real
    ``FemtoDHPCA100`` driver, so an invalid setting raises the driver's ValueError.
    ``seed`` makes every random stream (device spread and noise, amplifier, scope, SMU)
    reproducible.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    load_ohm = _parse_load(generator_load)
    device_rng, amplifier_rng, scope_rng, smu_rng = (
        np.random.default_rng(stream) for stream in np.random.SeedSequence(int(seed)).spawn(4)
    )

    clock = VirtualClock(start_time_s)
    device = MemristorModel(params, rng=device_rng)
    world = SimulatedWorld(device, clock)
    faults = WorldFaults(
        generator=FaultInjector("generator"),
        scope=FaultInjector("scope"),
        smu=FaultInjector("smu"),
        amplifier=FaultInjector("amplifier"),
    )

    generator_sim = Simulated33500B(world, load_ohm=load_ohm)
    smu_session = SimulatedM9601ASession(world, smu_rng, faults.smu)
    scope_adapter: SimulatedAdapter | None = None
    scope_sim = SimulatedRTE1104(world, scope_rng, visa_timeout_s=lambda: scope_adapter.timeout_s)
    amplifier_sim = SimulatedDHPCA100(amplifier_rng)
    world.attach(generator_sim, smu_session, scope_sim, amplifier_sim, faults)

    generator_adapter = SimulatedAdapter(generator_sim, faults.generator, GENERATOR_RESOURCE)
    scope_adapter = SimulatedAdapter(scope_sim, faults.scope, SCOPE_RESOURCE)
    control = SimulatedControlLines(amplifier_sim, faults.amplifier)

    generator = Keysight33500B(generator_adapter, limits=limits, device_load_ohm=math.inf)
    scope = RohdeSchwarzRTE1104(scope_adapter)
    smu = KeysightM9601A(SMU_RESOURCE, limits, session=smu_session, reset=smu_reset, clock=clock)
    amplifier = FemtoDHPCA100(control, gain_v_per_a=amplifier_gain_v_per_a, mode=amplifier_mode)

    device_params = dataclasses.asdict(device.params)
    description = {
        "bench": name,
        "backend": "sim",
        "seed": int(seed),
        "resources": {"generator": GENERATOR_RESOURCE, "scope": SCOPE_RESOURCE, "smu": SMU_RESOURCE,
                      "amplifier": control.name},
        "generator_load_setting": "INF" if math.isinf(load_ohm) else load_ohm,
        "amplifier": {"gain_v_per_a": amplifier.gain_v_per_a, "mode": amplifier.mode},
        "wiring": WIRING,
        "device_model": device_params,
        "limits": dataclasses.asdict(limits),
    }
    bench = Bench(
        name=name,
        backend="sim",
        smu=smu,
        generator=generator,
        amplifier=amplifier,
        scope=scope,
        limits=limits,
        clock=clock,
        description=description,
    )
    bench.world = world
    log.info("simulated bench %r built (seed %d, generator load %s)", name, seed,
             description["generator_load_setting"])
    return bench


def _parse_load(generator_load) -> float:
    """Return the load setting in ohms (math.inf for INF); raise ValueError if invalid."""
    if isinstance(generator_load, str):
        text = generator_load.strip().upper()
        if text in ("INF", "INFINITY", "HIGHZ", "HIGH-Z"):
            return math.inf
        try:
            generator_load = float(text)
        except ValueError:
            raise ValueError(f"generator_load must be 'INF' or a number of ohms, got {generator_load!r}") from None
    load = float(generator_load)
    if math.isinf(load) and load > 0:
        return math.inf
    if not 1.0 <= load <= 10e3:
        raise ValueError(f"generator_load must be 'INF' or 1 to 10000 ohms, got {generator_load!r}")
    return load
