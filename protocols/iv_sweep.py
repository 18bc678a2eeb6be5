"""``iv-sweep``: quasi-static current-voltage cycles with the SMU.

Each cycle is one SMU LIST sweep 0 V -> ``max_voltage_v`` -> ``min_voltage_v`` -> 0 V in
steps of ``step_v``, so consecutive cycles join at 0 V without a jump. Each point is held
``source_delay_s`` and then measured for ``aperture_s``; the current is limited to
``smu_current_limit_a``. The generator output stays off.

Published protocol (Weilenmann, Ziogas et al., Nat. Commun. 15, 2024): 30 cycles from
-2 V to +2 V on the Pt electrode. NOTE: the step, aperture and source delay were not
published; the defaults (50 mV, 10 ms, 10 ms, i.e. 2.5 V/s) are this project's choice.
"""

from __future__ import annotations

from typing import ClassVar

from protocols.base import BenchProcedure
from protocols.parameters import CountParameter, ExactFloatParameter
from protocols.plan import Note, Step, Sweep, staircase_cycle_v
from protocols.preflight import PreflightError


class IVSweepProcedure(BenchProcedure):
    """Repeated I-V staircase cycles on the Pt electrode, measured by the SMU."""

    PROTOCOL = "iv-sweep"
    DATA_COLUMNS: ClassVar[list[str]] = ["Time (s)", "Cycle", "Voltage (V)", "Current (A)", "Conductance (S)"]

    cycles = CountParameter(
        "Cycles", minimum=1, maximum=100_000, default=30,
        description="number of I-V cycles (published: 30)",
    )
    max_voltage_v = ExactFloatParameter(
        "Sweep maximum", units="V", minimum=1e-3, maximum=10.0, default=2.0,
        description="highest voltage of each cycle (published: +2 V)",
    )
    min_voltage_v = ExactFloatParameter(
        "Sweep minimum", units="V", minimum=-10.0, maximum=-1e-3, default=-2.0,
        description="lowest voltage of each cycle (published: -2 V)",
    )
    step_v = ExactFloatParameter(
        "Sweep step", units="V", minimum=1e-4, maximum=1.0, default=0.05,
        description="voltage step of the staircase",
    )
    aperture_s = ExactFloatParameter(
        "Aperture", units="s", minimum=8e-7, maximum=2.0, default=0.01,
        description="integration time of each measurement",
    )
    source_delay_s = ExactFloatParameter(
        "Source delay", units="s", minimum=0.0, maximum=10.0, default=0.01,
        description="wait after each voltage step before the measurement starts",
    )
    smu_current_limit_a = ExactFloatParameter(
        "SMU current limit", units="A", minimum=1e-9, maximum=0.1, default=1e-5,
        description="current compliance of the SMU (checked against the bench limit)",
    )

    def build_plan(self) -> list[Step]:
        try:
            cycle_v = staircase_cycle_v(self.min_voltage_v, self.max_voltage_v, self.step_v)
        except ValueError as error:
            raise PreflightError(str(error)) from None

        plan: list[Step] = []
        for cycle in range(1, self.cycles + 1):
            plan.append(Note(f"I-V cycle {cycle} of {self.cycles}"))
            plan.append(Sweep(cycle_v, self.aperture_s, self.source_delay_s,
                              self.smu_current_limit_a, tags={"Cycle": cycle}))
        return plan
