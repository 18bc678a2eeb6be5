"""``short-term``: the short-term response F to single pulses over an amplitude x width grid.

One pulse group (``protocols.pulse_response``) is measured for every amplitude, every
width and every repeat, with the repeat innermost and counted from 1. A group is baseline
reads at the read voltage, one pulse captured for its energy, then reads on a log time
axis while the read voltage stays on the device. Conductance comes only from read
windows, never from samples during a pulse. The short-term increase dF of a pulse is the conductance of its first
read minus the mean of its baseline reads.

Published protocol (Weilenmann, Ziogas et al., Nat. Commun. 15, 2024): continuous 0.6 V
read; amplitudes 2, 2.5, 3 and 3.5 V x widths 20, 100 and 500 us, 5 repeats each.
"""

from __future__ import annotations

from typing import ClassVar

from protocols.parameters import CountParameter, FloatListParameter
from protocols.plan import Note, Step
from protocols.pulse_response import RESPONSE_COLUMNS, PulseResponseProcedure


class ShortTermProcedure(PulseResponseProcedure):
    """Short-term response to a grid of pulse amplitudes and widths under a continuous read."""

    PROTOCOL = "short-term"
    DATA_COLUMNS: ClassVar[list[str]] = ["Time (s)", "Pulse amplitude (V)", "Pulse width (s)", "Repeat", *RESPONSE_COLUMNS]

    amplitudes_v = FloatListParameter(
        "Pulse amplitudes", units="V", minimum=0.0, maximum=10.0, default=[2.0, 2.5, 3.0, 3.5],
        description="voltages at the device during the pulses (published: 2, 2.5, 3, 3.5 V)",
    )
    widths_s = FloatListParameter(
        "Pulse widths", units="s", minimum=2e-8, maximum=1.0, default=[20e-6, 100e-6, 500e-6],
        description="pulse widths (published: 20, 100, 500 us)",
    )
    repeats = CountParameter(
        "Repeats", minimum=1, maximum=10_000, default=5,
        description="pulses of each amplitude and width (published: 5)",
    )

    def build_plan(self) -> list[Step]:
        plan: list[Step] = []
        for amplitude_v in self.amplitudes_v:
            for width_s in self.widths_s:
                plan.append(Note(f"pulses of {amplitude_v:g} V x {width_s:g} s"))
                for repeat in range(1, self.repeats + 1):
                    tags = {"Pulse amplitude (V)": amplitude_v, "Pulse width (s)": width_s,
                            "Repeat": repeat}
                    plan.extend(self.pulse_group(amplitude_v, width_s, self.read_voltage_v, tags))
        return plan
