"""The device parameter file: validation, reading, atomic writing and a readable summary.

The file is JSON with ``"format": "memsyn-device"`` and ``"version": 1``. Every fitted
number is a quantity ``{"value": float, "stderr": float | null, "unit": str}``, where
``stderr`` null means the uncertainty could not be estimated. ``docs/device-file.md``
lists every field with its unit and time base. ``stpn`` reads the same file with its own
reader, because it may not import ``fitting``; both follow that page.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
from pathlib import Path
from typing import Any

from fitting.errors import DeviceFileError

log = logging.getLogger(__name__)

FORMAT_NAME = "memsyn-device"
FORMAT_VERSION = 1

# Required quantities and their units (unit "1" is dimensionless).
REQUIRED_QUANTITIES: dict[str, str] = {
    "conductance.g_min": "S",
    "conductance.siemens_per_weight_unit": "S",
    "short_term.df_step": "S",
    "short_term.df_max": "S",
    "decay.step_interval_s": "s",
    "decay.lambda_min": "1",
    "decay.lambda_max": "1",
    "decay.sigmoid.L": "1",
    "decay.sigmoid.k": "1/V",
    "decay.sigmoid.V0": "V",
    "decay.sigmoid.Lambda0": "1",
    "pulse_energy.c": "J",
    "pulse_energy.alpha": "1",
    "bias_power.v_bias": "V",
}

# Quantities checked when present.
OPTIONAL_QUANTITIES: dict[str, str] = {
    "conductance.read_voltage": "V",
    "conductance.g_max": "S",
}

_TABLE_NUMBERS = ("amplitude_v", "width_s", "df_mean_s")
_TABLE_OPTIONAL_NUMBERS = ("df_std_s", "energy_mean_j")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def validate_device_document(document: Any, source: str = "device file") -> None:
    """Raise ``DeviceFileError`` naming the first invalid field of a device document.

    Checks the format name and version, every required quantity with its unit, the table,
    the decay points, the levels, the provenance, and that the numbers are consistent
    (positive conductances, 0 <= lambda_min < lambda_max <= 1, df_max >= df_step).
    """
    if not isinstance(document, dict):
        raise DeviceFileError(f"{source}: expected a JSON object, got {type(document).__name__}")
    _check_header(document, source)

    values: dict[str, float] = {}
    for path, unit in REQUIRED_QUANTITIES.items():
        values[path] = _check_quantity(_field(document, path, source), path, unit, source)
    for path, unit in OPTIONAL_QUANTITIES.items():
        item = _field(document, path, source, required=False)
        if item is not None:
            values[path] = _check_quantity(item, path, unit, source)

    _check_table(_field(document, "short_term.table", source), source)
    _check_points(_field(document, "decay.points", source), source)
    levels = _field(document, "conductance.levels", source, required=False)
    if levels is not None:
        _check_levels(levels, source)
    _check_provenance(_field(document, "provenance", source), source)
    warnings = _field(document, "warnings", source)
    if not isinstance(warnings, list):
        raise DeviceFileError(f"{source}: field 'warnings': expected a list, got {warnings!r}")
    if not isinstance(_field(document, "validity", source), dict):
        raise DeviceFileError(f"{source}: field 'validity': expected an object")

    _check_consistency(values, source)


def load_device_file(path: str | os.PathLike) -> dict:
    """Read and validate a device parameter file; raise ``DeviceFileError`` naming the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DeviceFileError(f"cannot read device file {path}: {error}") from error
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DeviceFileError(
            f"device file {path} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}"
        ) from error
    validate_device_document(document, str(path))
    return document


def write_device_file(document: Any, path: str | os.PathLike) -> Path:
    """Validate a device document and write it to ``path`` atomically; return the path.

    ``document`` is the dict, or a ``fitting.campaign.CampaignFit``, whose ``document`` is
    then written.

    The JSON goes to a temporary file in the same directory, is read back and validated,
    and only then replaces ``path``. An invalid document raises ``DeviceFileError`` and
    leaves any existing file at ``path`` untouched. The written file gets the permissions
    that the umask gives a new file (0o644 with umask 022), like the plots.
    """
    path = Path(path)
    document = getattr(document, "document", document)
    validate_device_document(document, f"device document for {path} (not written)")
    try:
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    except ValueError as error:
        raise DeviceFileError(f"device document for {path} contains NaN or infinity (not written): {error}") from error

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _write_new_file(path.parent, f".{path.name}.", ".tmp", text)
    try:
        load_device_file(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    log.info("wrote device file %s", path)
    return path


def _write_new_file(directory: Path, prefix: str, suffix: str, text: str) -> Path:
    """Write ``text`` to a new uniquely named file in ``directory``, synced; return its path.

    The file is created with mode 0o666 and the process umask removes bits from it, so it
    gets the permissions of any other file the user writes (0o644 with the usual umask 022).
    ``tempfile.mkstemp`` would create it readable by the owner only.
    """
    candidate = directory / f"{prefix}{secrets.token_hex(8)}{suffix}"
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        candidate.unlink(missing_ok=True)
        raise
    return candidate


def summarize_device(document: dict) -> str:
    """Return a multi-line readable summary of a validated device document."""
    def number(path: str) -> dict:
        return _field(document, path, "summary")

    def show(path: str, scale: float, unit: str, digits: int = 4) -> str:
        item = number(path)
        text = f"{item['value'] * scale:.{digits}g}"
        if item["stderr"] is not None:
            text += f" +- {item['stderr'] * scale:.2g}"
        return f"{text} {unit}".rstrip()

    unit_s = number("conductance.siemens_per_weight_unit")["value"]
    df_step = number("short_term.df_step")["value"]
    df_max = number("short_term.df_max")["value"]
    provenance = document["provenance"]
    sigmoid = ", ".join(
        f"{name} = {show(f'decay.sigmoid.{name}', 1, unit)}"
        for name, unit in (("L", ""), ("k", "1/V"), ("V0", "V"), ("Lambda0", ""))
    )
    lines = [
        (
            f"{document['format']} version {document['version']}, created "
            f"{provenance.get('created')} by {provenance.get('software')} from "
            f"{len(provenance.get('inputs', []))} results files"
        ),
        f"G_min                    {show('conductance.g_min', 1e9, 'nS')}",
        f"weight map               G_meas = G_min + {unit_s * 1e9:.4g} nS x G_sim",
        f"dF step                  {df_step * 1e9:.4g} nS = {df_step / unit_s:.4g} weight units",
        (
            f"dF max                   {show('short_term.df_max', 1e9, 'nS')} = "
            f"{df_max / unit_s:.4g} weight units"
        ),
        f"step interval            {number('decay.step_interval_s')['value']:.6g} s",
        (
            f"Lambda range             [{show('decay.lambda_min', 1, '')}, "
            f"{show('decay.lambda_max', 1, '')}]"
        ),
        "sigmoid                  Lambda(V) = L / (1 + exp(-k (V - V0))) + Lambda0",
        f"                         {sigmoid}",
        f"decay points             {len(document['decay']['points'])} biases",
        (
            f"pulse energy             E = {show('pulse_energy.c', 1e12, 'pJ')} x "
            f"(|dF| / 1 nS) ^ {show('pulse_energy.alpha', 1, '')}"
        ),
        f"bias for power           {show('bias_power.v_bias', 1, 'V')}",
        f"short-term table         {len(document['short_term']['table'])} (amplitude, width) cells",
        f"warnings                 {len(document['warnings'])}",
    ]
    for warning in document["warnings"]:
        lines.append(f"  - {warning.get('where', '?')}: {warning.get('message', warning)}")
    return "\n".join(lines)


def _field(document: dict, path: str, source: str, required: bool = True) -> Any:
    item: Any = document
    walked: list[str] = []
    for key in path.split("."):
        walked.append(key)
        if not isinstance(item, dict) or key not in item:
            if not required:
                return None
            raise DeviceFileError(f"{source}: missing field {'.'.join(walked)!r}")
        item = item[key]
    return item


def _check_header(document: dict, source: str) -> None:
    if document.get("format") != FORMAT_NAME:
        raise DeviceFileError(
            f"{source}: field 'format': expected {FORMAT_NAME!r}, got {document.get('format')!r}"
        )
    version = document.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise DeviceFileError(
            f"{source}: field 'version': this memsyn reads version {FORMAT_VERSION}, got "
            f"{version!r}; refit the results with this version"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_quantity(item: Any, path: str, unit: str, source: str) -> float:
    if not isinstance(item, dict):
        raise DeviceFileError(
            f"{source}: field {path!r}: expected an object with value, stderr and unit, got {item!r}"
        )
    for key in ("value", "stderr", "unit"):
        if key not in item:
            raise DeviceFileError(f"{source}: missing field '{path}.{key}'")
    if not _is_number(item["value"]):
        raise DeviceFileError(
            f"{source}: field '{path}.value': expected a finite number, got {item['value']!r}"
        )
    stderr = item["stderr"]
    if stderr is not None and not (_is_number(stderr) and stderr >= 0):
        raise DeviceFileError(
            f"{source}: field '{path}.stderr': expected null or a non-negative number, got {stderr!r}"
        )
    if item["unit"] != unit:
        raise DeviceFileError(
            f"{source}: field '{path}.unit': expected {unit!r}, got {item['unit']!r}"
        )
    return float(item["value"])


def _check_table(table: Any, source: str) -> None:
    if not isinstance(table, list) or not table:
        raise DeviceFileError(f"{source}: field 'short_term.table': expected a non-empty list")
    for index, row in enumerate(table):
        where = f"short_term.table[{index}]"
        if not isinstance(row, dict):
            raise DeviceFileError(f"{source}: field {where!r}: expected an object, got {row!r}")
        for key in _TABLE_NUMBERS:
            if not _is_number(row.get(key)):
                raise DeviceFileError(
                    f"{source}: field '{where}.{key}': expected a finite number, got {row.get(key)!r}"
                )
        for key in _TABLE_OPTIONAL_NUMBERS:
            if key not in row:
                raise DeviceFileError(f"{source}: missing field '{where}.{key}'")
            if row[key] is not None and not _is_number(row[key]):
                raise DeviceFileError(
                    f"{source}: field '{where}.{key}': expected null or a finite number, got {row[key]!r}"
                )
        repeats = row.get("repeats")
        if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
            raise DeviceFileError(
                f"{source}: field '{where}.repeats': expected a positive integer, got {repeats!r}"
            )


def _check_points(points: Any, source: str) -> None:
    if not isinstance(points, list) or not points:
        raise DeviceFileError(f"{source}: field 'decay.points': expected a non-empty list")
    for index, point in enumerate(points):
        where = f"decay.points[{index}]"
        if not isinstance(point, dict) or not _is_number(point.get("bias_v")):
            raise DeviceFileError(f"{source}: field '{where}.bias_v': expected a finite number")
        tau = _check_quantity(point.get("tau"), f"{where}.tau", "s", source)
        lam = _check_quantity(point.get("lambda"), f"{where}.lambda", "1", source)
        if tau <= 0:
            raise DeviceFileError(f"{source}: field '{where}.tau.value': expected > 0, got {tau!r}")
        if not 0 <= lam <= 1:
            raise DeviceFileError(
                f"{source}: field '{where}.lambda.value': expected a value in [0, 1], got {lam!r}"
            )


def _check_levels(levels: Any, source: str) -> None:
    if not isinstance(levels, list):
        raise DeviceFileError(f"{source}: field 'conductance.levels': expected a list")
    for index, level in enumerate(levels):
        where = f"conductance.levels[{index}]"
        if not isinstance(level, dict) or not isinstance(level.get("level"), int):
            raise DeviceFileError(f"{source}: field '{where}.level': expected an integer")
        _check_quantity(level.get("g"), f"{where}.g", "S", source)


def _check_provenance(provenance: Any, source: str) -> None:
    if not isinstance(provenance, dict):
        raise DeviceFileError(f"{source}: field 'provenance': expected an object")
    inputs = provenance.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise DeviceFileError(f"{source}: field 'provenance.inputs': expected a non-empty list")
    for index, item in enumerate(inputs):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise DeviceFileError(f"{source}: field 'provenance.inputs[{index}].path': expected a string")
        if not isinstance(item.get("sha256"), str) or not _SHA256.match(item["sha256"]):
            raise DeviceFileError(
                f"{source}: field 'provenance.inputs[{index}].sha256': expected 64 lower-case "
                f"hex digits, got {item.get('sha256')!r}"
            )
    for key in ("software", "created"):
        if not isinstance(provenance.get(key), str) or not provenance[key]:
            raise DeviceFileError(f"{source}: field 'provenance.{key}': expected a non-empty string")
    if "bench" not in provenance:
        raise DeviceFileError(f"{source}: missing field 'provenance.bench'")


def _check_consistency(values: dict[str, float], source: str) -> None:
    positive = (
        "conductance.g_min", "conductance.siemens_per_weight_unit", "short_term.df_step",
        "short_term.df_max", "decay.step_interval_s", "pulse_energy.c", "pulse_energy.alpha",
        "decay.sigmoid.L", "decay.sigmoid.k",
    )
    for path in positive:
        if values[path] <= 0:
            raise DeviceFileError(f"{source}: field '{path}.value': expected > 0, got {values[path]!r}")
    if values["bias_power.v_bias"] < 0:
        raise DeviceFileError(
            f"{source}: field 'bias_power.v_bias.value': expected >= 0, got {values['bias_power.v_bias']!r}"
        )
    low, high = values["decay.lambda_min"], values["decay.lambda_max"]
    if not 0 <= low < high <= 1:
        raise DeviceFileError(
            f"{source}: fields 'decay.lambda_min' and 'decay.lambda_max': expected "
            f"0 <= lambda_min < lambda_max <= 1, got {low!r} and {high!r}"
        )
    if values["short_term.df_max"] < values["short_term.df_step"]:
        raise DeviceFileError(
            f"{source}: field 'short_term.df_max.value': expected at least df_step "
            f"({values['short_term.df_step']!r} S), got {values['short_term.df_max']!r}"
        )
