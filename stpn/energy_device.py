"""Device-file parameters that the synaptic energy estimate needs, read and validated.

The device parameter file (format ``memsyn-device``, version 1) stores every fitted number
as ``{"value", "stderr", "unit"}``. This module reads the fields of the energy model: the
conductance map, the pulse-energy power law, the bias voltage, and the decay sigmoid with
its time base. It checks each value and unit. The sigmoid's inverse gives the bias that
realises a learned decay factor.

Formulas, with the published figures of Weilenmann, Ziogas et al., "Single neuromorphic
memristor closely emulates multiple synaptic mechanisms for energy efficient neural
networks", Nat. Commun. 15 (2024), arXiv 2402.16628:

* measured conductance ``G_meas = g_min + siemens_per_weight_unit * |G_sim|``
  (published: G_min about 12 nS, 2 nS per simulated weight unit);
* pulse energy ``E = c * (|dF_meas| / 1 nS) ** alpha`` (published: c = 30 pJ, alpha = 1.52);
* bias power ``P = V_bias**2 * G_meas`` (published worst case: V_bias = 0.6 V);
* decay sigmoid ``Lambda(V) = L / (1 + exp(-k (V - V0))) + Lambda0``, Lambda being the
  factor by which F shrinks over one network step of ``step_interval_s`` seconds
  (L, k, V0 and Lambda0 were not published).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stpn.device import DeviceFileError, load_device_file

log = logging.getLogger(__name__)

# Conductance unit that the pulse-energy power law takes, in siemens per unit.
PULSE_DF_UNITS_S = {"S": 1.0, "mS": 1e-3, "uS": 1e-6, "nS": 1e-9, "pS": 1e-12}


class EnergyInputError(ValueError):
    """Invalid input to the energy estimate (device file, trace, GPU energy file or a
    parameter). The message names the file and field and the fix."""


@dataclass(frozen=True)
class DecaySigmoid:
    """Decay factor against bias, ``Lambda(V) = L / (1 + exp(-k (V - V0))) + Lambda0``.

    ``k`` is in 1/V, ``v0_v`` in volts; ``amplitude`` (L) and ``offset`` (Lambda0) are
    dimensionless factors per network step of the device file's ``step_interval_s``.
    """

    amplitude: float
    k_per_v: float
    v0_v: float
    offset: float

    def decay_factor(self, bias_v: np.ndarray | float) -> np.ndarray:
        """Return Lambda at ``bias_v`` volts."""
        bias = np.asarray(bias_v, dtype=np.float64)
        return self.amplitude / (1.0 + np.exp(-self.k_per_v * (bias - self.v0_v))) + self.offset

    def bias_for(self, decay_factor: np.ndarray) -> np.ndarray:
        """Return the bias in volts at which the sigmoid equals ``decay_factor``.

        Only factors strictly between Lambda0 and Lambda0 + L have a finite inverse: the
        others give NaN, and the caller decides what they mean.
        """
        lam = np.asarray(decay_factor, dtype=np.float64)
        ratio = np.full_like(lam, np.nan)
        excess = lam - self.offset
        nonzero = excess != 0.0
        ratio[nonzero] = self.amplitude / excess[nonzero] - 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            bias = self.v0_v - np.log(ratio) / self.k_per_v
        bias[~np.isfinite(bias)] = np.nan
        return bias


@dataclass(frozen=True)
class EnergyDevice:
    """Device parameters of the energy model, all in SI units except where named."""

    path: Path
    sha256: str
    g_min_s: float
    siemens_per_weight_unit: float
    pulse_c_j: float
    pulse_alpha: float
    pulse_df_unit: str
    v_bias_v: float
    step_interval_s: float
    lambda_min: float
    lambda_max: float
    sigmoid: DecaySigmoid | None
    bias_range_v: tuple[float, float]
    bias_range_source: str

    @property
    def pulse_df_unit_s(self) -> float:
        """Conductance unit of the power law in siemens (1e-9 for nS)."""
        return PULSE_DF_UNITS_S[self.pulse_df_unit]


def load_energy_device(path: str | Path) -> EnergyDevice:
    """Read a device parameter file and return the parameters of the energy model.

    The network's reader ``stpn.device.load_device_file`` checks the format, the version
    and the fields the network shares with this model. The decay sigmoid is optional: a
    file without ``decay.sigmoid`` (such as the file of published figures, whose sigmoid
    was not published) gives ``sigmoid = None``, and the learned-bias variant is skipped.
    Raises EnergyInputError naming the file and the field when the file is missing or not
    JSON, or when a field is missing, not a finite number, out of range or in another unit.
    """
    path = Path(path)
    try:
        network = load_device_file(path)
    except DeviceFileError as error:
        raise EnergyInputError(str(error)) from None
    reader = _FieldReader(path, json.loads(path.read_bytes()))

    v_bias_v = reader.number("bias_power.v_bias", "V", nonzero=True)
    bias_range_v, bias_range_source = _bias_range(reader, v_bias_v)
    pulse_df_unit = reader.text("pulse_energy.df_unit")
    if pulse_df_unit not in PULSE_DF_UNITS_S:
        raise EnergyInputError(
            f"device file {path}: 'pulse_energy.df_unit' is {pulse_df_unit!r}, expected one of "
            f"{', '.join(PULSE_DF_UNITS_S)} (the published power law uses 'nS')"
        )

    device = EnergyDevice(
        path=path,
        sha256=network.sha256,
        g_min_s=reader.number("conductance.g_min", "S", minimum=0.0),
        siemens_per_weight_unit=network.siemens_per_weight_unit,
        pulse_c_j=reader.number("pulse_energy.c", "J", minimum=0.0),
        pulse_alpha=reader.number("pulse_energy.alpha", "1", minimum=0.0, nonzero=True),
        pulse_df_unit=pulse_df_unit,
        v_bias_v=v_bias_v,
        step_interval_s=reader.number("decay.step_interval_s", "s", minimum=0.0, nonzero=True),
        lambda_min=network.lambda_min,
        lambda_max=network.lambda_max,
        sigmoid=_decay_sigmoid(reader),
        bias_range_v=bias_range_v,
        bias_range_source=bias_range_source,
    )
    log.debug("read energy parameters from %s: %s", path, device)
    return device


def _decay_sigmoid(reader: _FieldReader) -> DecaySigmoid | None:
    """Return the decay sigmoid of the device file, or None when it has none."""
    decay = reader.raw.get("decay")
    if not isinstance(decay, dict) or "sigmoid" not in decay:
        log.warning(
            "device file %s has no decay.sigmoid, so the bias that realises each learned Lambda "
            "is unknown; only the worst-case bias energy is estimated", reader.path,
        )
        return None
    return DecaySigmoid(
        amplitude=reader.number("decay.sigmoid.L", "1", nonzero=True),
        k_per_v=reader.number("decay.sigmoid.k", "1/V", nonzero=True),
        v0_v=reader.number("decay.sigmoid.V0", "V"),
        offset=reader.number("decay.sigmoid.Lambda0", "1"),
    )


class _FieldReader:
    """Look up dotted fields of a device file and raise EnergyInputError naming them."""

    def __init__(self, path: Path, raw: dict):
        self.path = path
        self.raw = raw

    def lookup(self, dotted: str):
        node = self.raw
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise EnergyInputError(
                    f"device file {self.path}: field '{dotted}' is missing; the energy estimate "
                    "needs it, so re-export the device parameter file with this memsyn version"
                )
            node = node[part]
        return node

    def text(self, dotted: str) -> str:
        value = self.lookup(dotted)
        if not isinstance(value, str):
            raise EnergyInputError(
                f"device file {self.path}: field '{dotted}' must be a string, got {value!r}"
            )
        return value

    def number(
        self, dotted: str, unit: str, *, minimum: float | None = None, nonzero: bool = False
    ) -> float:
        """Return the finite ``value`` of a ``{"value", "unit"}`` field in ``unit``."""
        field = self.lookup(dotted)
        if not isinstance(field, dict) or "value" not in field:
            raise EnergyInputError(
                f"device file {self.path}: field '{dotted}' must be an object with 'value' and "
                f"'unit', got {field!r}"
            )
        if field.get("unit") != unit:
            raise EnergyInputError(
                f"device file {self.path}: field '{dotted}' has unit {field.get('unit')!r}, "
                f"expected {unit!r}"
            )

        value = field["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise EnergyInputError(
                f"device file {self.path}: '{dotted}.value' must be a finite number, got {value!r}"
            )
        if minimum is not None and value < minimum:
            raise EnergyInputError(
                f"device file {self.path}: '{dotted}.value' is {value}, expected at least {minimum}"
            )
        if nonzero and value == 0:
            raise EnergyInputError(f"device file {self.path}: '{dotted}.value' must not be zero")
        return float(value)


def _bias_range(reader: _FieldReader, v_bias_v: float) -> tuple[tuple[float, float], str]:
    """Return the bias range in volts over which the decay sigmoid was measured.

    The range spans the ``bias_v`` of the measured decay points. A file with fewer than two
    points gives the symmetric range of the worst-case bias, ``[-|v_bias|, +|v_bias|]``.
    """
    points = reader.raw.get("decay", {}).get("points")
    biases = []
    if isinstance(points, list):
        for point in points:
            bias = point.get("bias_v") if isinstance(point, dict) else None
            if isinstance(bias, (int, float)) and not isinstance(bias, bool) and math.isfinite(bias):
                biases.append(float(bias))

    if len(set(biases)) >= 2:
        return (min(biases), max(biases)), "decay.points bias_v"
    magnitude = abs(v_bias_v)
    return (-magnitude, magnitude), "+/- bias_power.v_bias (decay.points has fewer than 2 biases)"
