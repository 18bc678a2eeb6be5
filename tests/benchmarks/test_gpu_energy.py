"""GPU energy measurement script: statistics on fake readings and its error paths without a GPU."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from stpn.gpu_energy_model import load_gpu_energy

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_energy.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_energy_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look up their module in sys.modules while the module executes.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gpu_energy = load_script()


class FakeGpu:
    """A GPU whose energy counter integrates a power level over a virtual clock.

    The counter reads in whole millijoules, as NVML's does. Idle windows draw
    ``idle_power_w``. Each iteration of an operation lasts ``seconds_per_iteration[op]``
    at ``active_power_w`` plus seeded noise of ``noise_w`` standard deviation per run.
    """

    def __init__(self, idle_power_w=60.0, active_power_w=300.0, noise_w=0.0, seed=0,
                 seconds_per_iteration=None):
        self.idle_power_w = idle_power_w
        self.active_power_w = active_power_w
        self.noise_w = noise_w
        self.rng = np.random.default_rng(seed)
        self.seconds_per_iteration = seconds_per_iteration or {
            "add_w_f": 1e-3, "decay_mul": 1e-3, "add_df": 1e-3, "matvec_mac": 2e-3}
        self.time_s = 0.0
        self.energy_j = 0.0

    def advance(self, seconds, power_w):
        self.time_s += seconds
        self.energy_j += seconds * power_w

    def clock(self):
        return self.time_s

    def sleep(self, seconds):
        self.advance(seconds, self.idle_power_w)

    def read_energy_j(self):
        return math.floor(self.energy_j * 1000.0) / 1000.0

    def make_kernels(self, precision, rows, cols):
        gpu = self

        class Kernels:
            def runner(self, operation):
                def run(iterations):
                    power = gpu.active_power_w + gpu.noise_w * gpu.rng.standard_normal()
                    gpu.advance(iterations * gpu.seconds_per_iteration[operation], power)
                return run

        return Kernels()


def small_settings(**changes):
    values = {"rows": (4, 8), "cols": 16, "repeats": 5, "idle_repeats": 3,
              "min_window_s": 1.0, "bootstrap_resamples": 500}
    values.update(changes)
    return gpu_energy.Settings(**values)


def expected_energy_per_element(gpu, operation, rows, cols):
    net_power_w = gpu.active_power_w - gpu.idle_power_w
    return net_power_w * gpu.seconds_per_iteration[operation] / (rows * cols)


# Statistics and arithmetic on fake readings.


def test_measurement_recovers_energy_per_element():
    gpu = FakeGpu()
    document = gpu_energy.run_measurement(
        small_settings(), gpu, gpu.clock, gpu.sleep, gpu.make_kernels, np.random.default_rng(0)
    )
    assert len(document["measurements"]) == 2 * 2 * 4
    for entry in document["measurements"]:
        expected = expected_energy_per_element(gpu, entry["operation"], entry["rows"], 16)
        energy = entry["energy_per_element_j"]
        assert energy["value"] == pytest.approx(expected, rel=1e-3), entry
        assert energy["ci99_low"] <= energy["value"] <= energy["ci99_high"]
        assert entry["resolved"] is True
        assert entry["window_median"]["value"] >= 1.0


def test_energy_per_flop_of_matvec_is_half():
    gpu = FakeGpu()
    document = gpu_energy.run_measurement(
        small_settings(rows=(4,), precisions=("fp16",)), gpu, gpu.clock, gpu.sleep,
        gpu.make_kernels, np.random.default_rng(0),
    )
    matvec = next(e for e in document["measurements"] if e["operation"] == "matvec_mac")
    assert matvec["energy_per_flop_j"]["value"] == pytest.approx(
        matvec["energy_per_element_j"]["value"] / 2)


def test_idle_power_measured():
    gpu = FakeGpu(idle_power_w=55.0)
    document = gpu_energy.run_measurement(
        small_settings(rows=(4,), precisions=("fp32",)), gpu, gpu.clock, gpu.sleep,
        gpu.make_kernels, np.random.default_rng(0),
    )
    assert document["idle_power"]["value"] == pytest.approx(55.0, rel=1e-3)
    assert document["idle_power"]["unit"] == "W"
    assert document["warnings"] == []


def test_noisy_readings_give_interval_around_truth():
    gpu = FakeGpu(noise_w=20.0, seed=4)
    document = gpu_energy.run_measurement(
        small_settings(rows=(4,), precisions=("fp16",), repeats=40), gpu, gpu.clock,
        gpu.sleep, gpu.make_kernels, np.random.default_rng(1),
    )
    for entry in document["measurements"]:
        expected = expected_energy_per_element(gpu, entry["operation"], 4, 16)
        energy = entry["energy_per_element_j"]
        assert energy["ci99_low"] < expected < energy["ci99_high"]
        assert energy["ci99_high"] - energy["ci99_low"] > 0


def test_power_at_idle_level_is_unresolved():
    gpu = FakeGpu(idle_power_w=60.0, active_power_w=59.0)
    document = gpu_energy.run_measurement(
        small_settings(rows=(4,), precisions=("fp16",)), gpu, gpu.clock, gpu.sleep,
        gpu.make_kernels, np.random.default_rng(0),
    )
    assert [entry["resolved"] for entry in document["measurements"]] == [False] * 4
    assert len(document["warnings"]) == 4
    assert "does not lie above zero" in document["warnings"][0]


def test_idle_drift_warns():
    gpu = FakeGpu()
    original_sleep = gpu.sleep
    calls = []

    def drifting_sleep(seconds):
        calls.append(seconds)
        if len(calls) > 3:
            gpu.idle_power_w = 90.0
        original_sleep(seconds)

    document = gpu_energy.run_measurement(
        small_settings(rows=(4,), precisions=("fp16",)), gpu, gpu.clock, drifting_sleep,
        gpu.make_kernels, np.random.default_rng(0),
    )
    assert any("idle power changed" in warning for warning in document["warnings"])


def test_bootstrap_interval_of_known_samples():
    samples = np.arange(1.0, 102.0)
    median, low, high = gpu_energy.median_with_bootstrap_interval(
        samples, np.random.default_rng(0), resamples=2000)
    assert median == 51.0
    # The distribution-free 99 % interval of the median spans ranks 50.5 -/+ 2.576 x
    # sqrt(101) / 2, i.e. about 38 .. 63; the bootstrap interval must be of that size.
    assert 36.0 <= low < 51.0 < high <= 66.0
    assert high - low > 10.0


def test_bootstrap_is_seeded():
    samples = np.random.default_rng(5).normal(size=30)
    first = gpu_energy.median_with_bootstrap_interval(samples, np.random.default_rng(9))
    second = gpu_energy.median_with_bootstrap_interval(samples, np.random.default_rng(9))
    assert first == second


def test_bootstrap_of_constant_samples():
    median, low, high = gpu_energy.median_with_bootstrap_interval(
        np.full(10, 2.5), np.random.default_rng(0), resamples=100)
    assert (median, low, high) == (2.5, 2.5, 2.5)


def test_bootstrap_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        gpu_energy.median_with_bootstrap_interval(np.array([1.0]), np.random.default_rng(0))


def test_calibration_fills_window():
    gpu = FakeGpu()
    run = gpu.make_kernels("fp16", 4, 16).runner("add_w_f")
    iterations = gpu_energy.calibrate_iterations(gpu.clock, run, min_window_s=1.0)
    # 1 ms per iteration: 1000 iterations fill 1 s, plus the 10 % margin.
    assert iterations == 1100


def test_calibration_rejects_frozen_timer():
    with pytest.raises(gpu_energy.MeasurementError, match="timer does not advance"):
        gpu_energy.calibrate_iterations(lambda: 0.0, lambda iterations: None, 1.0)


def test_counter_that_does_not_advance_rejected():
    counter = SimpleNamespace(read_energy_j=lambda: 123.0)
    clock = iter([0.0, 1.5]).__next__
    with pytest.raises(gpu_energy.MeasurementError, match="did not advance over a window of 1.5 s"):
        gpu_energy.measure_window(counter, clock, lambda: None)


# The command line with fake torch and NVML.


def fake_torch(available=True, devices=1, uuid="0a1b2c3d-0000-1111-2222-333344445555"):
    return SimpleNamespace(
        __version__="2.13.0+test",
        version=SimpleNamespace(cuda="12.4" if available else None),
        cuda=SimpleNamespace(
            is_available=lambda: available,
            device_count=lambda: devices if available else 0,
            set_device=lambda index: None,
            get_device_properties=lambda index: SimpleNamespace(uuid=uuid),
        ),
    )


class FakeNVMLError(Exception):
    """Stands in for pynvml.NVMLError, so these tests run without nvidia-ml-py."""


class FakeNVMLNotSupported(FakeNVMLError):
    pass


def fake_nvml(gpu=None, count=1, energy_supported=True,
              uuid="GPU-0a1b2c3d-0000-1111-2222-333344445555", init_error=None):
    def init():
        if init_error is not None:
            raise FakeNVMLError(init_error)

    def total_energy(handle):
        if not energy_supported:
            raise FakeNVMLNotSupported("Not Supported")
        return int(gpu.read_energy_j() * 1000) if gpu else 0

    return SimpleNamespace(
        NVMLError=FakeNVMLError,
        NVMLError_NotSupported=FakeNVMLNotSupported,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: count,
        nvmlDeviceGetHandleByIndex=lambda index: f"handle-{index}",
        nvmlDeviceGetName=lambda handle: b"Fake H100",
        nvmlDeviceGetUUID=lambda handle: uuid,
        nvmlDeviceGetTotalEnergyConsumption=total_energy,
    )


def run_main(tmp_path, *extra, **injected):
    return gpu_energy.main(["--out", str(tmp_path / "gpu.json"), *extra], **injected)


def test_main_writes_file_the_estimator_reads(tmp_path, capsys):
    gpu = FakeGpu(noise_w=5.0)
    status = run_main(tmp_path, "--rows", "4,8", "--cols", "16", "--repeats", "4",
                      "--idle-repeats", "2", torch=fake_torch(), nvml=fake_nvml(gpu),
                      make_kernels=gpu.make_kernels, clock=gpu.clock, sleep=gpu.sleep)
    assert status == 0
    assert "wrote" in capsys.readouterr().out

    document = json.loads((tmp_path / "gpu.json").read_text())
    assert document["gpu"]["name"] == "Fake H100"
    assert document["settings"]["rows"] == [4, 8]
    model = load_gpu_energy(tmp_path / "gpu.json")
    assert model.source == "measured"
    # The standard size (64 rows) was not measured, so only the optimal cases remain.
    assert [case.label for case in model.cases] == ["fp16 optimal (8 rows)", "fp32 optimal (8 rows)"]


def test_main_without_cuda_torch(tmp_path, capsys):
    status = run_main(tmp_path, torch=fake_torch(available=False), nvml=fake_nvml())
    error = capsys.readouterr().err
    assert status == 1
    assert "cannot run on a GPU: it is a build without CUDA" in error
    assert not (tmp_path / "gpu.json").exists()


def test_main_without_nvml_library(tmp_path, capsys):
    # The real pynvml on a machine without the NVIDIA driver library.
    pynvml = pytest.importorskip("pynvml")
    if pynvml_library_present(pynvml):
        pytest.skip("this machine has the NVML library")
    status = run_main(tmp_path, torch=fake_torch(), nvml=pynvml)
    assert status == 1
    assert "NVML could not be initialised" in capsys.readouterr().err


def test_main_nvml_driver_not_loaded(tmp_path, capsys):
    nvml = fake_nvml(init_error="Driver Not Loaded")
    assert run_main(tmp_path, torch=fake_torch(), nvml=nvml) == 1
    assert "NVML could not be initialised (Driver Not Loaded)" in capsys.readouterr().err


def test_main_without_pynvml_package(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert run_main(tmp_path, torch=fake_torch()) == 1
    assert "nvidia-ml-py (module pynvml) is not installed" in capsys.readouterr().err


def test_main_no_gpu_listed(tmp_path, capsys):
    assert run_main(tmp_path, torch=fake_torch(), nvml=fake_nvml(count=0)) == 1
    assert "NVML finds no NVIDIA GPU" in capsys.readouterr().err


def test_main_counter_not_supported(tmp_path, capsys):
    assert run_main(tmp_path, torch=fake_torch(), nvml=fake_nvml(energy_supported=False)) == 1
    error = capsys.readouterr().err
    assert "does not support the NVML total-energy counter" in error
    assert "Fake H100" in error


def test_main_gpu_uuid_not_in_nvml(tmp_path, capsys):
    assert run_main(tmp_path, torch=fake_torch(), nvml=fake_nvml(uuid="GPU-ffff")) == 1
    assert "no GPU with the UUID" in capsys.readouterr().err


def test_main_device_index_out_of_range(tmp_path, capsys):
    assert run_main(tmp_path, "--device-index", "2", torch=fake_torch(), nvml=fake_nvml()) == 1
    assert "CUDA device 2 requested, torch finds 1 GPU(s)" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--rows", "64,x"], "--rows must be comma-separated integers"),
    (["--precisions", "bf16"], "unknown precision 'bf16'"),
    (["--repeats", "1"], "--repeats must be at least 2"),
    (["--min-window-s", "0"], "--min-window-s must be positive"),
])
def test_main_invalid_settings(tmp_path, capsys, arguments, message):
    assert run_main(tmp_path, *arguments, torch=fake_torch(), nvml=fake_nvml()) == 1
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_main_with_installed_torch(tmp_path, capsys):
    """The installed torch of this project's CPU machines has no CUDA: exit status 1."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert run_main(tmp_path) == 1
    assert "cannot run on a GPU" in capsys.readouterr().err


def pynvml_library_present(pynvml) -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True
