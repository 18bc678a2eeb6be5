"""Measure the GPU energy of the four m-STPN synapse operations with NVML's energy counter.

For each precision (fp16, fp32), layer size (rows swept 64 ... 4096 over the 2656 inputs
of the published layer) and operation (G = W + F, F * Lambda, F + dF, G z), the script
runs the operation in a loop for windows of at least ``--min-window-s`` seconds, reads
the GPU's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, in mJ since the
driver loaded) before and after each synchronised window, subtracts the idle power
measured in windows of the same length with the GPU idle, and divides by iterations x
synapses. Each result is the median over ``--repeats`` windows with a bootstrap 99 %
interval of the median. A result whose interval does not lie above zero is written with
``"resolved": false``, and ``memsyn energy`` ignores it.

    .venv/bin/python benchmarks/gpu_energy.py --out gpu-energy.json
    memsyn energy --device device.json --trace trace.npz --gpu-energy gpu-energy.json --out DIR

Needs an NVIDIA GPU of the Volta generation or newer, torch with CUDA and the package
nvidia-ml-py. Without any of them the script exits with status 1 and names the missing one.
The published study took the median of 100 repeats; the default here is 30, which takes
about 2 precisions x 7 sizes x 4 operations x 30 windows of 1 s, roughly 30 minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The script runs as `python benchmarks/gpu_energy.py`, so the repository root is added
# to the path for the shared format constants.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stpn.gpu_energy_model import (
    GPU_ENERGY_FORMAT,
    GPU_ENERGY_VERSION,
    OPERATION_DESCRIPTIONS,
    OPERATION_FLOPS,
    PUBLISHED_LAYER_ROWS,
)

log = logging.getLogger("gpu_energy")

PUBLISHED_LAYER_COLS = 2656
DEFAULT_ROWS = (64, 128, 256, 512, 1024, 2048, 4096)
CONFIDENCE = 0.99


class MeasurementError(RuntimeError):
    """The measurement cannot run or gave an unusable reading. The message gives the reason."""


@dataclass(frozen=True)
class Window:
    """Counter energy in joules and timer duration in seconds of one measured window."""

    energy_j: float
    duration_s: float


@dataclass
class RawMeasurement:
    """The windows of one (precision, rows, operation), before the idle power is subtracted."""

    precision: str
    rows: int
    cols: int
    operation: str
    iterations: int
    windows: list[Window] = field(default_factory=list)

    @property
    def elements(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True)
class Settings:
    """Measurement settings, all written into the output file."""

    precisions: tuple[str, ...] = ("fp16", "fp32")
    rows: tuple[int, ...] = DEFAULT_ROWS
    cols: int = PUBLISHED_LAYER_COLS
    repeats: int = 30
    idle_repeats: int = 10
    min_window_s: float = 1.0
    bootstrap_resamples: int = 10_000
    seed: int = 0


# NVML energy counter.


class NvmlEnergyCounter:
    """Total-energy counter of one GPU through NVML (package nvidia-ml-py, module pynvml)."""

    def __init__(self, nvml, device_index: int, torch_uuid: str | None = None):
        self.nvml = nvml
        self.name = f"GPU {device_index}"
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            raise MeasurementError(
                f"NVML could not be initialised ({error}); an NVIDIA driver must be installed "
                "and loaded"
            ) from None

        try:
            count = nvml.nvmlDeviceGetCount()
            if count == 0:
                raise MeasurementError("NVML finds no NVIDIA GPU on this machine")
            self.handle = self._find_handle(count, device_index, torch_uuid)
            self.name = _text(nvml.nvmlDeviceGetName(self.handle))
            self.read_energy_j()
        except nvml.NVMLError_NotSupported:
            self.close()
            raise MeasurementError(
                f"the GPU {self.name!r} does not support the NVML total-energy counter "
                "(nvmlDeviceGetTotalEnergyConsumption needs a Volta or newer GPU)"
            ) from None
        except nvml.NVMLError as error:
            self.close()
            raise MeasurementError(f"NVML failed while opening GPU {device_index}: {error}") from None
        except MeasurementError:
            self.close()
            raise

    def _find_handle(self, count: int, device_index: int, torch_uuid: str | None):
        """Return the NVML handle of the GPU that torch uses, matched by UUID when known.

        NVML numbers GPUs by PCI bus while CUDA may order them otherwise, so the index
        alone can name another GPU when a machine has several.
        """
        if torch_uuid:
            wanted = torch_uuid.lower().removeprefix("gpu-")
            for index in range(count):
                handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
                uuid = _text(self.nvml.nvmlDeviceGetUUID(handle)).lower().removeprefix("gpu-")
                if uuid == wanted:
                    return handle
            raise MeasurementError(f"NVML lists no GPU with the UUID {torch_uuid} that torch uses")
        if device_index >= count:
            raise MeasurementError(f"GPU index {device_index} requested, NVML lists {count} GPU(s)")
        log.warning("torch gives no GPU UUID; using NVML GPU index %d", device_index)
        return self.nvml.nvmlDeviceGetHandleByIndex(device_index)

    def read_energy_j(self) -> float:
        """Return the energy the GPU consumed since the driver loaded, in joules."""
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError as error:
            log.warning("NVML shutdown failed: %s", error)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# CUDA kernels.


def check_cuda_torch(torch) -> None:
    """Raise MeasurementError unless ``torch`` can run on a CUDA GPU."""
    if not torch.cuda.is_available():
        built_with = getattr(torch.version, "cuda", None)
        reason = (f"it was built with CUDA {built_with} but finds no usable GPU" if built_with
                  else "it is a build without CUDA")
        raise MeasurementError(
            f"torch {torch.__version__} cannot run on a GPU: {reason}; run this script on a "
            "machine with an NVIDIA GPU and a CUDA build of torch"
        )


class TorchKernels:
    """CUDA tensors of one layer size and precision, and a loop runner per operation.

    NOTE: these kernels and the NVML calls have run only against fakes in the tests, never
    on a GPU. Check a short run (``--repeats 3 --rows 64 --precisions fp32``) first.
    """

    def __init__(self, torch, precision: str, rows: int, cols: int, seed: int):
        self.torch = torch
        dtype = {"fp16": torch.float16, "fp32": torch.float32}[precision]
        generator = torch.Generator(device="cuda").manual_seed(seed)

        def uniform(*shape, low=-0.125, high=0.125):
            values = torch.rand(*shape, generator=generator, device="cuda", dtype=torch.float32)
            return (low + (high - low) * values).to(dtype)

        self.w = uniform(rows, cols)
        self.f = uniform(rows, cols)
        self.lam = uniform(rows, cols, low=0.08, high=0.92)
        self.df = uniform(rows, cols)
        self.z = uniform(cols)
        # Results go to separate buffers, so every iteration reads the same operands and
        # F does not decay towards zero or subnormal numbers over the loop.
        self.g = torch.empty_like(self.w)
        self.out = torch.empty_like(self.w)
        self.y = torch.empty(rows, dtype=dtype, device="cuda")

    def runner(self, operation: str) -> Callable[[int], None]:
        """Return a function that runs ``operation`` the given number of times and waits
        for the GPU to finish."""
        torch = self.torch
        steps = {
            "add_w_f": lambda: torch.add(self.w, self.f, out=self.g),
            "decay_mul": lambda: torch.mul(self.f, self.lam, out=self.out),
            "add_df": lambda: torch.add(self.f, self.df, out=self.out),
            "matvec_mac": lambda: torch.mv(self.w, self.z, out=self.y),
        }
        step = steps[operation]

        def run(iterations: int) -> None:
            for _ in range(iterations):
                step()
            torch.cuda.synchronize()

        return run


# Measurement and statistics, independent of NVML and CUDA so that tests can inject fakes.


def measure_window(counter, clock: Callable[[], float], action: Callable[[], None]) -> Window:
    """Run ``action`` between two counter and clock readings and return the window."""
    start_energy_j = counter.read_energy_j()
    start_s = clock()
    action()
    duration_s = clock() - start_s
    energy_j = counter.read_energy_j() - start_energy_j
    if energy_j <= 0:
        raise MeasurementError(
            f"the NVML energy counter did not advance over a window of {duration_s:.3g} s "
            f"(difference {energy_j:g} J); the counter is unusable on this GPU"
        )
    return Window(energy_j=energy_j, duration_s=duration_s)


def measure_idle_power_w(counter, clock, sleep, window_s: float, repeats: int) -> list[float]:
    """Return the power in watts of ``repeats`` windows with the GPU idle."""
    powers = []
    for _ in range(repeats):
        window = measure_window(counter, clock, lambda: sleep(window_s))
        if window.duration_s <= 0:
            raise MeasurementError("the timer did not advance over an idle window")
        powers.append(window.energy_j / window.duration_s)
    return powers


def calibrate_iterations(clock, run: Callable[[int], None], min_window_s: float) -> int:
    """Return the number of iterations that fills a window of at least ``min_window_s``.

    Runs 1, 4, 16, ... iterations until a run takes a tenth of the window, then scales
    up with a 10 % margin.
    """
    iterations = 1
    while True:
        start_s = clock()
        run(iterations)
        elapsed_s = clock() - start_s
        if elapsed_s >= min_window_s / 10:
            return max(1, math.ceil(1.1 * iterations * min_window_s / elapsed_s))
        if iterations > 2**40:
            raise MeasurementError(
                f"{iterations} iterations took {elapsed_s:g} s; the timer does not advance"
            )
        iterations *= 4


def median_with_bootstrap_interval(
    samples: np.ndarray, rng: np.random.Generator, confidence: float = CONFIDENCE,
    resamples: int = 10_000,
) -> tuple[float, float, float]:
    """Return the median of ``samples`` and the percentile bootstrap interval of the median.

    The interval contains the central ``confidence`` share of the medians of ``resamples``
    resamples drawn with replacement.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 samples, got {samples.size}")
    indices = rng.integers(0, samples.size, size=(resamples, samples.size))
    medians = np.median(samples[indices], axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(medians, [tail, 1.0 - tail])
    return float(np.median(samples)), float(low), float(high)


def measure_operation(
    counter, clock, run: Callable[[int], None], settings: Settings, raw: RawMeasurement
) -> RawMeasurement:
    """Warm up, then record ``settings.repeats`` windows of ``raw.iterations`` runs."""
    run(max(1, raw.iterations // 10))
    for _ in range(settings.repeats):
        raw.windows.append(measure_window(counter, clock, lambda: run(raw.iterations)))
    return raw


def summarise(
    raw: RawMeasurement, idle_power_w: float, settings: Settings, rng: np.random.Generator
) -> tuple[dict, list[str]]:
    """Return the output entry of one measurement and its warnings."""
    energies = np.array([window.energy_j for window in raw.windows])
    durations = np.array([window.duration_s for window in raw.windows])
    net_per_element = (energies - idle_power_w * durations) / (raw.iterations * raw.elements)
    median, low, high = median_with_bootstrap_interval(
        net_per_element, rng, CONFIDENCE, settings.bootstrap_resamples
    )

    where = f"{raw.precision} {raw.rows} rows {raw.operation}"
    warnings = []
    resolved = low > 0
    if not resolved:
        warnings.append(
            f"{where}: the {CONFIDENCE:.0%} interval of the energy above idle "
            f"({low:.3g} .. {high:.3g} J per synapse) does not lie above zero; not used"
        )
    if durations.min() < settings.min_window_s:
        warnings.append(f"{where}: shortest window {durations.min():.3g} s, below "
                        f"{settings.min_window_s:g} s")

    entry = {
        "precision": raw.precision,
        "rows": raw.rows,
        "cols": raw.cols,
        "operation": raw.operation,
        "description": OPERATION_DESCRIPTIONS[raw.operation],
        "flops_per_element": OPERATION_FLOPS[raw.operation],
        "iterations": raw.iterations,
        "repeats": len(raw.windows),
        "window_median": {"value": float(np.median(durations)), "unit": "s"},
        "power_median": {"value": float(np.median(energies / durations)), "unit": "W"},
        "resolved": resolved,
        "energy_per_element_j": {"value": median, "ci99_low": low, "ci99_high": high,
                                 "unit": "J"},
        "energy_per_flop_j": {"value": median / OPERATION_FLOPS[raw.operation], "unit": "J"},
    }
    return entry, warnings


def run_measurement(
    settings: Settings, counter, clock, sleep, make_kernels, rng: np.random.Generator,
    gpu: dict | None = None,
) -> dict:
    """Measure every precision, size and operation and return the output document.

    ``make_kernels(precision, rows, cols)`` returns an object whose ``runner(operation)``
    gives a function that runs the operation n times and waits for the GPU.
    """
    idle_before = measure_idle_power_w(counter, clock, sleep, settings.min_window_s,
                                       settings.idle_repeats)
    raw_measurements = []
    for precision in settings.precisions:
        for rows in settings.rows:
            kernels = make_kernels(precision, rows, settings.cols)
            for operation in OPERATION_FLOPS:
                run = kernels.runner(operation)
                iterations = calibrate_iterations(clock, run, settings.min_window_s)
                log.info("measuring %s %d x %d %s: %d iterations per window", precision, rows,
                         settings.cols, operation, iterations)
                raw = RawMeasurement(precision, rows, settings.cols, operation, iterations)
                raw_measurements.append(measure_operation(counter, clock, run, settings, raw))
    idle_after = measure_idle_power_w(counter, clock, sleep, settings.min_window_s,
                                      settings.idle_repeats)

    idle_powers = np.array(idle_before + idle_after)
    idle_power_w, idle_low, idle_high = median_with_bootstrap_interval(
        idle_powers, rng, CONFIDENCE, settings.bootstrap_resamples
    )
    warnings = []
    drift = abs(np.median(idle_after) - np.median(idle_before)) / np.median(idle_before)
    if drift > 0.1:
        warnings.append(
            f"idle power changed by {drift:.0%} between the start ({np.median(idle_before):.1f} W) "
            f"and the end ({np.median(idle_after):.1f} W) of the run"
        )

    measurements = []
    for raw in raw_measurements:
        entry, entry_warnings = summarise(raw, idle_power_w, settings, rng)
        measurements.append(entry)
        warnings += entry_warnings
    for warning in warnings:
        log.warning("%s", warning)

    return {
        "format": GPU_ENERGY_FORMAT,
        "version": GPU_ENERGY_VERSION,
        "method": (
            "NVML total-energy counter read around synchronised loops of one operation; idle "
            "power (median of idle windows before and after) times window duration subtracted; "
            f"median over repeats with a percentile bootstrap {CONFIDENCE:.0%} interval"
        ),
        "gpu": gpu or {},
        "settings": {
            "precisions": list(settings.precisions), "rows": list(settings.rows),
            "cols": settings.cols, "standard_rows": PUBLISHED_LAYER_ROWS,
            "repeats": settings.repeats, "idle_repeats": settings.idle_repeats,
            "min_window_s": settings.min_window_s,
            "bootstrap_resamples": settings.bootstrap_resamples, "seed": settings.seed,
        },
        "idle_power": {"value": idle_power_w, "ci99_low": idle_low, "ci99_high": idle_high,
                       "unit": "W"},
        "measurements": measurements,
        "warnings": warnings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# Command line.


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpu_energy.py",
        description="Measure the energy per synapse of the four m-STPN operations on an NVIDIA "
                    "GPU with NVML's total-energy counter; write a file for 'memsyn energy "
                    "--gpu-energy'.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output JSON file")
    parser.add_argument("--repeats", type=int, default=Settings.repeats,
                        help="windows per measurement (default %(default)s; the study used 100)")
    parser.add_argument("--idle-repeats", type=int, default=Settings.idle_repeats,
                        help="idle windows before and after the run (default %(default)s each)")
    parser.add_argument("--min-window-s", type=float, default=Settings.min_window_s,
                        help="minimum window length in seconds (default %(default)s)")
    parser.add_argument("--rows", default=",".join(str(rows) for rows in DEFAULT_ROWS),
                        help="comma-separated layer row counts (default %(default)s)")
    parser.add_argument("--cols", type=int, default=PUBLISHED_LAYER_COLS,
                        help="inputs per row (default %(default)s, the published layer)")
    parser.add_argument("--precisions", default="fp16,fp32",
                        help="comma-separated precisions out of fp16, fp32 (default %(default)s)")
    parser.add_argument("--device-index", type=int, default=0, help="CUDA device index")
    parser.add_argument("--seed", type=int, default=0, help="seed of tensors and bootstrap")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Return validated settings; raise MeasurementError for invalid values."""
    try:
        rows = tuple(int(text) for text in args.rows.split(","))
    except ValueError:
        raise MeasurementError(f"--rows must be comma-separated integers, got {args.rows!r}") from None
    precisions = tuple(args.precisions.split(","))
    unknown = [name for name in precisions if name not in ("fp16", "fp32")]
    if unknown:
        raise MeasurementError(f"unknown precision {unknown[0]!r}; use fp16, fp32 or both")
    if min(rows) < 1 or args.cols < 1:
        raise MeasurementError("--rows and --cols must be positive")
    if args.repeats < 2 or args.idle_repeats < 1:
        raise MeasurementError("--repeats must be at least 2 and --idle-repeats at least 1")
    if not args.min_window_s > 0:
        raise MeasurementError("--min-window-s must be positive")
    return Settings(precisions=precisions, rows=rows, cols=args.cols, repeats=args.repeats,
                    idle_repeats=args.idle_repeats, min_window_s=args.min_window_s,
                    seed=args.seed)


def import_torch():
    try:
        import torch
    except ImportError:
        raise MeasurementError("torch is not installed; install a CUDA build of torch") from None
    return torch


def import_nvml():
    try:
        import pynvml
    except ImportError:
        raise MeasurementError(
            "the package nvidia-ml-py (module pynvml) is not installed; install it with "
            "'pip install nvidia-ml-py'"
        ) from None
    return pynvml


def main(argv: list[str] | None = None, *, torch=None, nvml=None, make_kernels=None,
         clock=time.perf_counter, sleep=time.sleep) -> int:
    """Run the measurement and return the exit status: 0, or 1 with a message on stderr.

    ``torch``, ``nvml``, ``make_kernels``, ``clock`` and ``sleep`` replace the real modules,
    kernels and timers in tests.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        settings = settings_from_args(args)
        torch = torch or import_torch()
        check_cuda_torch(torch)
        if not 0 <= args.device_index < torch.cuda.device_count():
            raise MeasurementError(
                f"CUDA device {args.device_index} requested, torch finds "
                f"{torch.cuda.device_count()} GPU(s)"
            )
        torch.cuda.set_device(args.device_index)
        properties = torch.cuda.get_device_properties(args.device_index)
        torch_uuid = str(getattr(properties, "uuid", "") or "") or None
        counter = NvmlEnergyCounter(nvml or import_nvml(), args.device_index, torch_uuid)
        if make_kernels is None:
            def make_kernels(precision, rows, cols):
                return TorchKernels(torch, precision, rows, cols, args.seed)
        try:
            configurations = len(settings.precisions) * len(settings.rows) * len(OPERATION_FLOPS)
            log.info("measuring %d configurations x %d windows of >= %g s on %s",
                     configurations, settings.repeats, settings.min_window_s, counter.name)
            document = run_measurement(
                settings, counter, clock, sleep, make_kernels, np.random.default_rng(args.seed),
                gpu={"name": counter.name, "torch": torch.__version__,
                     "cuda": getattr(torch.version, "cuda", None)},
            )
        finally:
            counter.close()
    except MeasurementError as error:
        print(f"gpu_energy.py: error: {error}", file=sys.stderr)
        return 1

    write_json_atomic(args.out, document)
    print(f"wrote {args.out}")
    return 0


def write_json_atomic(path: Path, document: dict) -> None:
    """Write ``document`` to a temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


if __name__ == "__main__":
    sys.exit(main())
