"""``bias-decay``: decay of the short-term state F under a constant bias held between reads.

For every bias and every repeat (repeat innermost, counted from 1) one pulse group is
measured (``protocols.pulse_response``): baseline reads at the read voltage, the main
pulse, the first read at the read voltage right after it, then the bias on the device
between read pulses scheduled on a log time axis against the bench clock. Rows record the
scheduled time since the pulse and the actual one.

An interrupted bias-decay run cannot be continued: the device kept relaxing at whatever
voltage it last saw, so the state at the interruption is lost. Run it again from the
start; the results file records this in its ``Resumable`` header entry and in the
status reason.

Published protocol (Weilenmann, Ziogas et al., Nat. Commun. 15, 2024): main pulse 3.5 V,
500 us, then a constant bias between 0.6 V read pulses, the bias from -0.6 V to +0.6 V,
5 repeats, plotted on a log time axis. NOTE: the bias step was not published; the default
list uses 0.1 V steps (13 values).
"""

from __future__ import annotations

from typing import ClassVar

from protocols.parameters import CountParameter, ExactFloatParameter, FloatListParameter
from protocols.plan import Note, Step
from protocols.pulse_response import RESPONSE_COLUMNS, PulseResponseProcedure

DEFAULT_BIASES_V = [round(-0.6 + 0.1 * index, 10) for index in range(13)]


class BiasDecayProcedure(PulseResponseProcedure):
    """Short-term decay after a main pulse, with a constant bias between the reads."""

    PROTOCOL = "bias-decay"
    RESUMABLE = False
    DATA_COLUMNS: ClassVar[list[str]] = [
        "Time (s)", "Bias (V)", "Repeat", "Pulse amplitude (V)", "Pulse width (s)",
        *RESPONSE_COLUMNS,
    ]

    biases_v = FloatListParameter(
        "Biases", units="V", minimum=-10.0, maximum=10.0, default=DEFAULT_BIASES_V,
        description="voltages held on the device between reads (published: -0.6 ... +0.6 V)",
    )
    pulse_amplitude_v = ExactFloatParameter(
        "Pulse amplitude", units="V", minimum=0.0, maximum=10.0, default=3.5,
        description="voltage at the device during the main pulse (published: 3.5 V)",
    )
    pulse_width_s = ExactFloatParameter(
        "Pulse width", units="s", minimum=2e-8, maximum=1.0, default=500e-6,
        description="width of the main pulse (published: 500 us)",
    )
    repeats = CountParameter(
        "Repeats", minimum=1, maximum=10_000, default=5,
        description="main pulses at each bias (published: 5)",
    )

    def build_plan(self) -> list[Step]:
        plan: list[Step] = []
        for bias_v in self.biases_v:
            plan.append(Note(f"decay at a bias of {bias_v:g} V"))
            for repeat in range(1, self.repeats + 1):
                tags = {"Bias (V)": bias_v, "Repeat": repeat,
                        "Pulse amplitude (V)": self.pulse_amplitude_v,
                        "Pulse width (s)": self.pulse_width_s}
                plan.extend(self.pulse_group(self.pulse_amplitude_v, self.pulse_width_s, bias_v, tags))
        return plan
