"""GPU energy of the synapse operations of one m-STPN step, estimated or measured.

A GPU runs four operations per synapse and step: the element-wise add G = W + F, the decay
multiply F * Lambda, the element-wise add F + dF, and the matrix-vector product G z, whose
fused multiply-add counts 2 flop. The energy of a game is the sum over operations of the
energy per synapse and operation, times synapses, times steps.

Two sources of the per-operation energies:

* the built-in estimate from the per-flop energies of a register-only kernel reported by
  Weilenmann, Ziogas et al. (Nat. Commun. 15, 2024; arXiv 2402.16628): 5.9 pJ/flop in fp16,
  9.5 pJ/flop in fp32. It is a lower bound, because it leaves out the memory traffic,
  which that study measured at over 98 % of the GPU energy;
* a file measured with ``benchmarks/gpu_energy.py`` (NVML total-energy counter), giving
  each operation's energy per synapse with a 99 % bootstrap interval, at the published
  layer size ("standard") and at the row count where the GPU is most efficient ("optimal").
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from stpn.energy_device import EnergyInputError

log = logging.getLogger(__name__)

GPU_ENERGY_FORMAT = "memsyn-gpu-energy"
GPU_ENERGY_VERSION = 1

# Floating-point operations per synapse and network step, by operation.
OPERATION_FLOPS = {"add_w_f": 1, "decay_mul": 1, "add_df": 1, "matvec_mac": 2}
OPERATION_DESCRIPTIONS = {
    "add_w_f": "G = W + F (element-wise add)",
    "decay_mul": "F * Lambda (element-wise multiply)",
    "add_df": "F + dF (element-wise add)",
    "matvec_mac": "G z (matrix-vector product, one fused multiply-add = 2 flop per synapse)",
}
PRECISIONS = ("fp16", "fp32")

# Register-only kernel energy per flop from the published study (see module docstring).
REGISTER_ONLY_J_PER_FLOP = {"fp16": 5.9e-12, "fp32": 9.5e-12}
ESTIMATE_DESCRIPTION = (
    "estimate from the published register-only kernel energies (5.9 pJ/flop fp16, 9.5 pJ/flop "
    "fp32); a lower bound, because it leaves out memory traffic, which the study measured at "
    "over 98 % of the GPU energy"
)

# Rows of the published m-STPN layer (64 units x 2656 inputs): the "standard" case.
PUBLISHED_LAYER_ROWS = 64


@dataclass(frozen=True)
class GpuCase:
    """Energy per synapse and network step of each operation for one precision and size.

    ``interval_j`` contains each operation's 99 % interval (low, high) when measured, else None.
    """

    precision: str
    name: str
    rows: int | None
    energy_j: dict[str, float]
    interval_j: dict[str, tuple[float, float]] | None

    @property
    def label(self) -> str:
        return f"{self.precision} {self.name}"

    def energy_per_synapse_step_j(self) -> float:
        return sum(self.energy_j.values())

    def interval_per_synapse_step_j(self) -> tuple[float, float] | None:
        """Sum of the per-operation interval bounds: a conservative range, not a joint interval."""
        if self.interval_j is None:
            return None
        low = sum(bounds[0] for bounds in self.interval_j.values())
        high = sum(bounds[1] for bounds in self.interval_j.values())
        return low, high


@dataclass(frozen=True)
class GpuEnergyModel:
    """Per-operation GPU energies from one source, with one or more cases."""

    source: str
    description: str
    path: Path | None
    cases: tuple[GpuCase, ...]
    gpu_name: str | None = None

    def best_case(self) -> GpuCase:
        """Return the case with the least energy per synapse and step."""
        return min(self.cases, key=GpuCase.energy_per_synapse_step_j)


def register_only_estimate() -> GpuEnergyModel:
    """Return the built-in per-flop estimate, one case per precision."""
    cases = tuple(
        GpuCase(
            precision=precision,
            name="register-only estimate",
            rows=None,
            energy_j={op: flops * REGISTER_ONLY_J_PER_FLOP[precision]
                      for op, flops in OPERATION_FLOPS.items()},
            interval_j=None,
        )
        for precision in PRECISIONS
    )
    return GpuEnergyModel(source="estimate", description=ESTIMATE_DESCRIPTION, path=None, cases=cases)


def load_gpu_energy(path: str | Path) -> GpuEnergyModel:
    """Read a file written by ``benchmarks/gpu_energy.py`` and return its cases.

    For each precision, the "standard" case is the published layer size (64 rows). The
    "optimal" case is the row count with the least total energy per synapse and step,
    among the sizes where all four operations were resolved above the idle baseline. Raises
    EnergyInputError when the file is missing, malformed or holds no complete size.
    """
    path = Path(path)
    raw = _read_gpu_json(path)
    table = _measurement_table(path, raw)

    cases = []
    for precision in PRECISIONS:
        complete = {rows: ops for rows, ops in table.get(precision, {}).items()
                    if set(ops) == set(OPERATION_FLOPS)}
        if not complete:
            log.warning("GPU energy file %s has no complete %s measurement", path, precision)
            continue

        standard_rows = int(raw.get("settings", {}).get("standard_rows", PUBLISHED_LAYER_ROWS))
        if standard_rows in complete:
            cases.append(_measured_case(precision, f"standard ({standard_rows} rows)",
                                        standard_rows, complete[standard_rows]))
        optimal_rows = min(complete, key=lambda rows: sum(v[0] for v in complete[rows].values()))
        cases.append(_measured_case(precision, f"optimal ({optimal_rows} rows)",
                                    optimal_rows, complete[optimal_rows]))

    if not cases:
        raise EnergyInputError(
            f"GPU energy file {path}: no precision has all four operations measured above the "
            "idle baseline at any size; measure again with longer windows (--min-window-s)"
        )
    gpu_name = raw.get("gpu", {}).get("name")
    description = f"measured with the NVML total-energy counter on {gpu_name or 'an unnamed GPU'}"
    return GpuEnergyModel(source="measured", description=description, path=path,
                          cases=tuple(cases), gpu_name=gpu_name)


def _read_gpu_json(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EnergyInputError(f"GPU energy file {path} not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EnergyInputError(f"GPU energy file {path} could not be read: {error}") from None
    except json.JSONDecodeError as error:
        raise EnergyInputError(
            f"GPU energy file {path} is not valid JSON (line {error.lineno}): {error.msg}"
        ) from None

    if not isinstance(raw, dict) or raw.get("format") != GPU_ENERGY_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise EnergyInputError(
            f"GPU energy file {path}: format is {found!r}, expected {GPU_ENERGY_FORMAT!r}; pass "
            "a file written by benchmarks/gpu_energy.py"
        )
    if raw.get("version") != GPU_ENERGY_VERSION:
        raise EnergyInputError(
            f"GPU energy file {path}: version {raw.get('version')!r} is not supported, "
            f"expected {GPU_ENERGY_VERSION}"
        )
    return raw


def _measurement_table(path: Path, raw: dict) -> dict[str, dict[int, dict[str, tuple]]]:
    """Return ``{precision: {rows: {operation: (energy_j, (low_j, high_j))}}}`` of the
    resolved measurements."""
    measurements = raw.get("measurements")
    if not isinstance(measurements, list):
        raise EnergyInputError(f"GPU energy file {path}: 'measurements' must be a list")

    table: dict[str, dict[int, dict[str, tuple]]] = {}
    for number, entry in enumerate(measurements):
        where = f"GPU energy file {path}: measurements[{number}]"
        try:
            precision = entry["precision"]
            rows = int(entry["rows"])
            operation = entry["operation"]
            resolved = bool(entry["resolved"])
            energy = entry["energy_per_element_j"]
            value, low, high = (float(energy[key]) for key in ("value", "ci99_low", "ci99_high"))
            unit = energy["unit"]
        except (KeyError, TypeError, ValueError) as error:
            raise EnergyInputError(f"{where} is malformed ({error!r})") from None

        if precision not in PRECISIONS or operation not in OPERATION_FLOPS or unit != "J":
            raise EnergyInputError(
                f"{where}: expected precision in {PRECISIONS}, operation in "
                f"{tuple(OPERATION_FLOPS)} and unit 'J', got {precision!r}, {operation!r}, {unit!r}"
            )
        if not resolved:
            continue
        if not all(math.isfinite(x) for x in (value, low, high)) or value <= 0:
            raise EnergyInputError(
                f"{where} is marked resolved but its energy is {value!r}; expected a positive "
                "finite number"
            )
        table.setdefault(precision, {}).setdefault(rows, {})[operation] = (value, (low, high))
    return table


def _measured_case(precision: str, name: str, rows: int, ops: dict[str, tuple]) -> GpuCase:
    return GpuCase(
        precision=precision,
        name=name,
        rows=rows,
        energy_j={op: ops[op][0] for op in OPERATION_FLOPS},
        interval_j={op: ops[op][1] for op in OPERATION_FLOPS},
    )
