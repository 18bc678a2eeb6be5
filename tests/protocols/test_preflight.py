"""Pre-flight: every device voltage of a plan is checked before anything is sent."""

import pytest

from instruments.safety import SafetyLimits
from protocols import PROTOCOLS
from protocols.campaign import make_procedure
from protocols.plan import Hold, PulseTrain, Read, SetLevel, Sweep
from protocols.preflight import PreflightError, check_plan
from protocols.runner import run_procedure

LIMITS = SafetyLimits(max_voltage_v=4.0, min_voltage_v=-2.5, max_current_a=1e-4)


def test_summary_of_small_plan():
    plan = [SetLevel(0.6), Read(0.6, 1e-3), PulseTrain(3.5, 1e-4, capture=True),
            Read(0.6, 1e-3, scheduled_since_pulse_s=0.01), Hold(-0.6, 1.0)]
    summary = check_plan(plan, LIMITS)
    assert summary.max_device_voltage_v == 3.5
    assert summary.min_device_voltage_v == -0.6
    assert summary.max_generator_voltage_v == pytest.approx(2.9)
    assert summary.pulses == 1
    assert summary.reads == 2
    assert summary.duration_s == pytest.approx(1e-3 + 1e-4 + 0.01 + 5e-4 + 1.0)


@pytest.mark.parametrize(
    "plan, message",
    [
        ([SetLevel(4.5)], "above the device limit"),
        ([Hold(-3.0, 1.0)], "below the device limit"),
        ([SetLevel(0.6), PulseTrain(4.2, 1e-4)], "pulse amplitude at the device of 4.2 V"),
        ([SetLevel(0.6), PulseTrain(0.5, 1e-4)], "must be above the SMU level"),
        ([Sweep((0.0, 1.0, 4.5), 1e-3, 0.0, 1e-5)], "sweep sample 2 is 4.5 V"),
        ([Sweep((0.0, 1.0), 1e-3, 0.0, 1e-3)], "current limit of 0.001 A"),
        ([Read(5.0, 1e-3)], "read voltage of 5 V"),
        ([Read(0.6, 1e-3, scheduled_since_pulse_s=1.0)], "before any pulse train"),
        ([], "no steps"),
    ],
)
def test_rejections(plan, message):
    with pytest.raises(PreflightError, match=message):
        check_plan(plan, LIMITS)


def test_rejection_names_step_index():
    plan = [SetLevel(0.0), SetLevel(0.6), SetLevel(5.0)]
    with pytest.raises(PreflightError, match=r"^step 2 \(SetLevel\)"):
        check_plan(plan, LIMITS)


def test_sum_of_smu_bias_and_pulse_is_checked():
    # A negative bias under the pulse is fine as long as each sum is in range; the generator
    # then supplies amplitude minus bias, more than the amplitude itself.
    summary = check_plan([SetLevel(-0.6), PulseTrain(3.5, 1e-4)], LIMITS)
    assert summary.max_generator_voltage_v == pytest.approx(4.1)
    assert summary.max_device_voltage_v == 3.5


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_published_defaults_pass_preflight(protocol):
    procedure = PROTOCOLS[protocol]()
    summary = check_plan(procedure.build_plan(), LIMITS)
    assert summary.max_device_voltage_v <= LIMITS.max_voltage_v
    assert summary.min_device_voltage_v >= LIMITS.min_voltage_v


def test_rejected_run_sends_nothing_and_writes_nothing(fake_bench, tmp_path):
    procedure = make_procedure("short-term", {"amplitudes_v": [2.0, 4.5], "widths_s": [1e-4],
                                              "repeats": 1, "last_read_s": 0.1})
    path = tmp_path / "short-term.csv"
    with pytest.raises(PreflightError, match="4.5 V is above the device limit max_voltage_v = 4 V"):
        run_procedure(procedure, fake_bench, path)
    assert fake_bench.calls == []
    assert not path.exists()
    assert fake_bench.device.max_voltage_v == 0.0


def test_amplifier_range_checked_before_anything_is_sent(tmp_path):
    from fake_bench import FakeBench

    from protocols.actions import RangeExceededError

    bench = FakeBench(gain_v_per_a=1e6)
    procedure = make_procedure("bias-decay", {"biases_v": [0.0], "repeats": 1, "last_read_s": 0.1})
    with pytest.raises(RangeExceededError, match="saturates at 1e-06 A"):
        run_procedure(procedure, bench, tmp_path / "bias-decay.csv")
    assert bench.calls == []
