"""``long-term-levels``: stack long-term levels W1, W2, ... and measure the short-term response at each.

Level 0 is the state the device is in when the protocol starts (left out with
``include_initial_level = false``). Each further level k = 1 ... ``levels`` is reached by
one SET train (``set_pulse_count`` pulses of ``set_amplitude_v`` and ``set_width_s``, every
``set_period_s``) followed by ``settle_s`` at 0 V. At every level the short-term response
is measured as in ``short-term``, over ``amplitudes_v`` x ``widths_s`` with ``repeats``
pulses each. The rows carry the level in the ``Level`` column.

Published protocol (Weilenmann, Ziogas et al., Nat. Commun. 15, 2024): repeat the SET
protocol and the short-term protocol to stack levels between 12 and 23 nS at the 0.6 V
read. NOTE: the number of levels and the reduced grid measured at each level were not
published; the defaults (3 further levels; 2, 2.5, 3 V at 100 us) are this project's
choice.
"""

from __future__ import annotations

from typing import ClassVar

from pymeasure.experiment import BooleanParameter

from protocols.parameters import CountParameter, ExactFloatParameter, FloatListParameter
from protocols.plan import Hold, Note, PulseTrain, SetLevel, Step
from protocols.pulse_response import RESPONSE_COLUMNS, PulseResponseProcedure


class LongTermLevelsProcedure(PulseResponseProcedure):
    """SET trains that stack long-term levels, with the short-term response at each level."""

    PROTOCOL = "long-term-levels"
    DATA_COLUMNS: ClassVar[list[str]] = [
        "Level", "Time (s)", "Pulse amplitude (V)", "Pulse width (s)", "Repeat", *RESPONSE_COLUMNS,
    ]

    levels = CountParameter(
        "Levels", minimum=1, maximum=1000, default=3,
        description="SET trains, each adding one long-term level",
    )
    include_initial_level = BooleanParameter(
        "Include initial level", default=True,
        description="measure the short-term response at the starting state as level 0",
    )
    set_pulse_count = CountParameter(
        "SET pulses", minimum=1, maximum=100_000, default=100,
        description="pulses in each SET train (published: 100)",
    )
    set_amplitude_v = ExactFloatParameter(
        "SET amplitude", units="V", minimum=0.1, maximum=10.0, default=4.0,
        description="voltage at the device during each SET pulse (published: 4 V)",
    )
    set_width_s = ExactFloatParameter(
        "SET width", units="s", minimum=2e-8, maximum=1.0, default=500e-6,
        description="width of each SET pulse (published: 500 us)",
    )
    set_period_s = ExactFloatParameter(
        "SET period", units="s", minimum=4e-8, maximum=100.0, default=10e-3,
        description="time from the start of one SET pulse to the next",
    )
    settle_s = ExactFloatParameter(
        "Settle time", units="s", minimum=0.0, maximum=86_400.0, default=240.0,
        description="time at 0 V after each SET train (published: 240 s)",
    )
    amplitudes_v = FloatListParameter(
        "Pulse amplitudes", units="V", minimum=0.0, maximum=10.0, default=[2.0, 2.5, 3.0],
        description="voltages at the device of the short-term pulses at each level",
    )
    widths_s = FloatListParameter(
        "Pulse widths", units="s", minimum=2e-8, maximum=1.0, default=[100e-6],
        description="widths of the short-term pulses at each level",
    )
    repeats = CountParameter(
        "Repeats", minimum=1, maximum=10_000, default=5,
        description="short-term pulses of each amplitude and width at each level",
    )

    def build_plan(self) -> list[Step]:
        plan: list[Step] = []
        first_level = 0 if self.include_initial_level else 1
        for level in range(first_level, self.levels + 1):
            if level > 0:
                plan.append(Note(f"SET train for level {level}"))
                plan.append(SetLevel(0.0))
                plan.append(PulseTrain(self.set_amplitude_v, self.set_width_s, self.set_pulse_count,
                                       self.set_period_s, capture=False, tags={"Level": level}))
                plan.append(Hold(0.0, self.settle_s))
            plan.append(Note(f"short-term response at level {level}"))
            plan.extend(self.level_response(level))
        return plan

    def level_response(self, level: int) -> list[Step]:
        """Return the pulse groups measured at one level."""
        steps: list[Step] = []
        for amplitude_v in self.amplitudes_v:
            for width_s in self.widths_s:
                for repeat in range(1, self.repeats + 1):
                    tags = {"Level": level, "Pulse amplitude (V)": amplitude_v,
                            "Pulse width (s)": width_s, "Repeat": repeat}
                    steps.extend(self.pulse_group(amplitude_v, width_s, self.read_voltage_v, tags))
        return steps
