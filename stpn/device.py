"""Read the device parameter file and turn it into m-STPN synapse constraints.

The fitting package writes the file format ("memsyn-device", version 1). This reader
checks only the fields the network needs and does not import that package.
The network works in weight units: a conductance of siemens_per_weight_unit is one unit,
so the discretisation step is df_step / siemens_per_weight_unit and the largest update
df_max / siemens_per_weight_unit (0.5 and 20 with the published 1 nS, 40 nS and 2 nS).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from stpn.mstpn_ops import SynapseConstraints

log = logging.getLogger(__name__)

FORMAT = "memsyn-device"
SUPPORTED_VERSIONS = (1,)
PUBLISHED_DEVICE_PATH = Path(__file__).with_name("data") / "published-device.json"
"""Device file built from the published figures (not a fit); see its provenance field."""

LAMBDA_PRESETS = {
    "none": (0.0, 0.0),
    "wide": (0.0, 1.0),
    "slow": (0.5, 0.99),
}
"""Decay ranges to compare with the device's own ("device"); "none" removes memory in F
beyond one step (F_t = dF_t)."""


class DeviceFileError(ValueError):
    """The device parameter file is missing, unreadable or lacks a valid field."""


def _file_error(path: Path, problem: str) -> DeviceFileError:
    """Return a DeviceFileError whose message starts with "device file PATH:"."""
    return DeviceFileError(f"device file {path}: {problem}")


@dataclass(frozen=True)
class DeviceParameters:
    """The fields of a device file that the network and its traces use (SI units)."""

    path: Path
    sha256: str
    siemens_per_weight_unit: float
    df_step_s: float
    df_max_s: float
    lambda_min: float
    lambda_max: float
    g_min_s: float | None
    step_interval_s: float | None

    def synapse_constraints(self, lambda_range: str = "device") -> SynapseConstraints:
        """Return the constraints in weight units, with the decay range from a preset:
        "device" (the file's), a name in LAMBDA_PRESETS, or "LOW,HIGH"."""
        low, high = parse_lambda_range(lambda_range, (self.lambda_min, self.lambda_max))
        return SynapseConstraints(
            lambda_min=low,
            lambda_max=high,
            df_step=self.df_step_s / self.siemens_per_weight_unit,
            df_max=self.df_max_s / self.siemens_per_weight_unit,
        )


def parse_lambda_range(text: str, device_range: tuple[float, float]) -> tuple[float, float]:
    """Return (low, high) for "device", a preset name, or two numbers "LOW,HIGH"."""
    if text == "device":
        return device_range
    if text in LAMBDA_PRESETS:
        return LAMBDA_PRESETS[text]
    parts = text.split(",")
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        names = ", ".join(["device", *LAMBDA_PRESETS])
        raise ValueError(
            f"invalid decay range {text!r}: expected one of {names} or two numbers 'LOW,HIGH'"
        ) from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"invalid decay range {text!r}: expected 0 <= LOW <= HIGH <= 1")
    return low, high


def load_device_file(path: str | Path) -> DeviceParameters:
    """Read and validate a device parameter file; raise DeviceFileError naming the field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DeviceFileError(f"cannot read device file {path}: {error.strerror}") from None
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DeviceFileError(f"device file {path} is not valid JSON: {error}") from None
    reader = _FieldReader(document, path)

    if reader.get("format") != FORMAT:
        raise _file_error(path, f"expected format {FORMAT!r}, got {reader.get('format')!r}")
    if reader.get("version") not in SUPPORTED_VERSIONS:
        raise _file_error(path, f"unsupported version {reader.get('version')!r}, this "
                                f"reader supports {SUPPORTED_VERSIONS}")

    parameters = DeviceParameters(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        siemens_per_weight_unit=reader.quantity("conductance.siemens_per_weight_unit", "S",
                                                positive=True),
        df_step_s=reader.quantity("short_term.df_step", "S", minimum=0.0),
        df_max_s=reader.quantity("short_term.df_max", "S", positive=True),
        lambda_min=reader.quantity("decay.lambda_min", "1", minimum=0.0, maximum=1.0),
        lambda_max=reader.quantity("decay.lambda_max", "1", minimum=0.0, maximum=1.0),
        g_min_s=reader.optional_quantity("conductance.g_min", "S"),
        step_interval_s=reader.optional_quantity("decay.step_interval_s", "s"),
    )
    if parameters.lambda_min > parameters.lambda_max:
        raise _file_error(path, f"decay.lambda_min ({parameters.lambda_min}) is larger "
                                f"than decay.lambda_max ({parameters.lambda_max})")
    if parameters.df_step_s > parameters.df_max_s:
        raise _file_error(path, f"short_term.df_step ({parameters.df_step_s} S) is larger "
                                f"than short_term.df_max ({parameters.df_max_s} S)")
    for warning in document.get("warnings") or []:
        log.warning("device file %s: %s", path, warning)
    return parameters


class _FieldReader:
    """Look up dotted field names in the parsed document with errors that name the field."""

    def __init__(self, document, path: Path) -> None:
        if not isinstance(document, dict):
            raise _file_error(path, "expected a JSON object at the top level")
        self.document = document
        self.path = path

    def get(self, dotted: str):
        node = self.document
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def quantity(self, dotted: str, unit: str, *, positive: bool = False,
                 minimum: float | None = None, maximum: float | None = None) -> float:
        node = self.get(dotted)
        if node is None:
            raise _file_error(self.path, f"missing field {dotted}")
        if not isinstance(node, dict) or "value" not in node:
            raise _file_error(self.path, f"field {dotted} must be an object with "
                                         "'value', 'stderr' and 'unit'")
        if node.get("unit") != unit:
            raise _file_error(self.path, f"field {dotted} must have unit {unit!r}, got "
                                         f"{node.get('unit')!r}")
        value = node["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise _file_error(self.path, f"{dotted}.value must be a finite number, got "
                                         f"{value!r}")
        value = float(value)
        if positive and value <= 0.0:
            raise _file_error(self.path, f"{dotted}.value must be positive, got {value}")
        if minimum is not None and value < minimum:
            raise _file_error(self.path, f"{dotted}.value must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise _file_error(self.path, f"{dotted}.value must be <= {maximum}, got {value}")
        return value

    def optional_quantity(self, dotted: str, unit: str) -> float | None:
        if self.get(dotted) is None:
            return None
        return self.quantity(dotted, unit)
