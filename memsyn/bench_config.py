"""Bench files: which backend, which instruments at which addresses, and the device limits.

A bench file is TOML (read with ``tomllib``). ``benches/sim.toml`` is the default and
``benches/example-lab.toml`` shows a real bench with comments. Every problem found in a
file is reported as a ``BenchConfigError`` that names the file, the key and, where it can be
found, the line, so the user can fix the file without guessing.
"""

from __future__ import annotations

import logging
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instruments.femto_dhpca100 import GAINS_V_PER_A, MODES
from memsyn.errors import UsageError

log = logging.getLogger(__name__)

#: Backends a bench file can select.
BACKENDS = ("sim", "visa")

#: Instrument role -> the driver that serves it.
DRIVERS = {
    "smu": "keysight_m9601a",
    "generator": "keysight_33500b",
    "amplifier": "femto_dhpca100",
    "scope": "rs_rte1104",
}

AMPLIFIER_CONTROLS = ("manual", "luci10", "simulated")
GENERATOR_LOADS = ("INF", "50")

# Limits of the hardware of the published setup. The 33500B drives at most
# +-10 V into a high-impedance load, which also bounds the sum of the two sources that a
# protocol may plan. NOTE: the M9601A's own current ceiling is taken as 0.1 A here; check
# the M9601A data sheet for the range fitted to your unit.
HARDWARE_MAX_ABS_VOLTAGE_V = 10.0
HARDWARE_MAX_CURRENT_A = 0.1

# Voltages above about 4 V can electroform the SrTiO3 device for good.
FORMING_RISK_VOLTAGE_V = 4.0

_TOP_LEVEL_KEYS = {"bench", "limits", "instruments", "sim"}
_BENCH_KEYS = {"name", "backend", "description"}
_LIMIT_KEYS = {"max_voltage_v", "min_voltage_v", "max_current_a"}
_INSTRUMENT_KEYS = {
    "smu": {"driver", "resource", "options"},
    "generator": {"driver", "resource", "output_load", "channel"},
    "amplifier": {"driver", "control", "gain_v_per_a", "mode", "adapter_id"},
    "scope": {"driver", "resource", "current_channel", "voltage_channel"},
}
_SIM_KEYS = {"seed"}


class BenchConfigError(UsageError):
    """A bench file is missing, malformed or requests something the bench cannot do."""


@dataclass(frozen=True)
class InstrumentConfig:
    """One instrument of a bench file: its role, driver, address and extra settings."""

    role: str
    driver: str
    resource: str | None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchConfig:
    """A validated bench file."""

    path: Path
    name: str
    backend: str
    max_voltage_v: float
    min_voltage_v: float
    max_current_a: float
    instruments: dict[str, InstrumentConfig]
    amplifier_gain_v_per_a: float
    amplifier_mode: str
    generator_load: str
    seed: int | None = None
    description: str = ""

    def as_header(self) -> dict[str, Any]:
        """Return the bench description written into results-file headers."""
        return {
            "bench_file": str(self.path),
            "bench_name": self.name,
            "backend": self.backend,
            "max_voltage_v": self.max_voltage_v,
            "min_voltage_v": self.min_voltage_v,
            "max_current_a": self.max_current_a,
            "amplifier_gain_v_per_a": self.amplifier_gain_v_per_a,
            "amplifier_mode": self.amplifier_mode,
            "generator_load": self.generator_load,
            "instruments": {
                role: {"driver": item.driver, "resource": item.resource}
                for role, item in self.instruments.items()
            },
        }


class _Locator:
    """Find the line of a key in a TOML text, for error messages (best effort)."""

    _header = re.compile(r"^\s*\[\s*([^\]\[]+?)\s*\]\s*(#.*)?$")

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line_of(self, table: str, key: str | None = None) -> int | None:
        current = ""
        for number, line in enumerate(self.lines, start=1):
            match = self._header.match(line)
            if match:
                current = re.sub(r"\s*\.\s*", ".", match.group(1)).replace('"', "")
                if key is None and current == table:
                    return number
                continue
            if key is not None and current == table:
                if re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", line):
                    return number
        return None


class _Reader:
    """Validate one parsed bench file, with messages that point into the file."""

    def __init__(self, path: Path, text: str, data: dict[str, Any]):
        self.path = path
        self.locator = _Locator(text)
        self.data = data

    def fail(self, table: str, key: str | None, message: str) -> BenchConfigError:
        line = self.locator.line_of(table, key)
        if line is None and key is not None:
            line = self.locator.line_of(table)
        where = f"{self.path}"
        if line is not None:
            where += f", line {line}"
        name = f"{table}.{key}" if key else f"[{table}]"
        return BenchConfigError(f"{where}: {name}: {message}")

    def table(self, parent: dict[str, Any], name: str, path: str, required: bool = True) -> dict:
        value = parent.get(name)
        if value is None:
            if required:
                raise self.fail(path.rpartition(".")[0] or path, None,
                                f"missing table [{path}]; add it (see benches/example-lab.toml)")
            return {}
        if not isinstance(value, dict):
            raise self.fail(path.rpartition(".")[0], name, f"must be a table, got {value!r}")
        return value

    def reject_unknown(self, table: dict[str, Any], allowed: set[str], path: str) -> None:
        for key in table:
            if key not in allowed:
                choices = ", ".join(sorted(allowed))
                raise self.fail(path, key, f"unknown key {key!r}; allowed keys are: {choices}")

    def number(self, table: dict[str, Any], key: str, path: str, required: bool = True):
        if key not in table:
            if required:
                raise self.fail(path, None, f"missing key {key!r}")
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(path, key, f"must be a finite number, got {value!r}")
        return float(value)

    def string(self, table: dict[str, Any], key: str, path: str, choices=None, required=True):
        if key not in table:
            if required:
                raise self.fail(path, None, f"missing key {key!r}")
            return None
        value = table[key]
        if not isinstance(value, str):
            raise self.fail(path, key, f"must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(path, key, f"{value!r} is not one of {', '.join(choices)}")
        return value


def load_bench_config(path: str | Path) -> BenchConfig:
    """Read and validate a bench file; raise BenchConfigError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchConfigError(f"bench file {path} not found; pass an existing file with --bench") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BenchConfigError(f"cannot read bench file {path}: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BenchConfigError(f"{path}: not valid TOML: {error}") from None
    return _validate(_Reader(path, text, data))


def _validate(reader: _Reader) -> BenchConfig:
    data = reader.data
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            line = reader.locator.line_of(key) or reader.locator.line_of("", key)
            where = f"{reader.path}" + (f", line {line}" if line else "")
            raise BenchConfigError(
                f"{where}: unknown table or key {key!r}; allowed: {', '.join(sorted(_TOP_LEVEL_KEYS))}"
            )

    bench = reader.table(data, "bench", "bench")
    reader.reject_unknown(bench, _BENCH_KEYS, "bench")
    backend = reader.string(bench, "backend", "bench", choices=BACKENDS)
    name = reader.string(bench, "name", "bench", required=False) or reader.path.stem
    description = reader.string(bench, "description", "bench", required=False) or ""

    limits = _validate_limits(reader)
    instruments = _validate_instruments(reader, backend)

    sim = reader.table(data, "sim", "sim", required=False)
    reader.reject_unknown(sim, _SIM_KEYS, "sim")
    seed = None
    if "seed" in sim:
        seed = sim["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise reader.fail("sim", "seed", f"must be a non-negative integer, got {seed!r}")
    if sim and backend != "sim":
        raise reader.fail("sim", None, "a [sim] table only applies to backend = \"sim\"; remove it")

    amplifier = instruments["amplifier"].settings
    generator = instruments["generator"].settings
    return BenchConfig(
        path=reader.path,
        name=name,
        backend=backend,
        max_voltage_v=limits["max_voltage_v"],
        min_voltage_v=limits["min_voltage_v"],
        max_current_a=limits["max_current_a"],
        instruments=instruments,
        amplifier_gain_v_per_a=amplifier["gain_v_per_a"],
        amplifier_mode=amplifier["mode"],
        generator_load=generator.get("output_load", "INF"),
        seed=seed,
        description=description,
    )


def _validate_limits(reader: _Reader) -> dict[str, float]:
    table = reader.table(reader.data, "limits", "limits")
    reader.reject_unknown(table, _LIMIT_KEYS, "limits")
    limits = {key: reader.number(table, key, "limits") for key in sorted(_LIMIT_KEYS)}

    for key in ("max_voltage_v", "min_voltage_v"):
        if abs(limits[key]) > HARDWARE_MAX_ABS_VOLTAGE_V:
            raise reader.fail(
                "limits", key,
                f"{limits[key]:g} V is outside what the bench can apply "
                f"(+-{HARDWARE_MAX_ABS_VOLTAGE_V:g} V)",
            )
    if limits["min_voltage_v"] >= limits["max_voltage_v"]:
        raise reader.fail(
            "limits", "min_voltage_v",
            f"{limits['min_voltage_v']:g} V must be below max_voltage_v = {limits['max_voltage_v']:g} V",
        )
    if limits["max_voltage_v"] > FORMING_RISK_VOLTAGE_V:
        line = reader.locator.line_of("limits", "max_voltage_v")
        log.warning(
            "%s, line %s: limits.max_voltage_v = %g V is above %g V, where the SrTiO3 device "
            "can electroform for good; keep it only if your protocols need it",
            reader.path, line, limits["max_voltage_v"], FORMING_RISK_VOLTAGE_V,
        )
    if not 0 < limits["max_current_a"] <= HARDWARE_MAX_CURRENT_A:
        raise reader.fail(
            "limits", "max_current_a",
            f"{limits['max_current_a']:g} A must be positive and at most "
            f"{HARDWARE_MAX_CURRENT_A:g} A, the SMU's range",
        )
    return limits


def _validate_instruments(reader: _Reader, backend: str) -> dict[str, InstrumentConfig]:
    table = reader.table(reader.data, "instruments", "instruments")
    reader.reject_unknown(table, set(DRIVERS), "instruments")
    instruments: dict[str, InstrumentConfig] = {}
    for role, driver in DRIVERS.items():
        path = f"instruments.{role}"
        if role not in table:
            raise reader.fail(
                "instruments", None,
                f"missing instrument [{path}] (driver = \"{driver}\"); every bench needs the "
                f"{', '.join(DRIVERS)}",
            )
        entry = reader.table(table, role, path)
        reader.reject_unknown(entry, _INSTRUMENT_KEYS[role], path)
        reader.string(entry, "driver", path, choices=(driver,))
        resource = reader.string(entry, "resource", path, required=False)
        settings = {key: value for key, value in entry.items() if key not in ("driver", "resource")}
        if role == "amplifier":
            settings = _validate_amplifier(reader, entry, path, backend)
            resource = entry.get("resource")
        elif role == "generator":
            load = entry.get("output_load", "INF")
            if isinstance(load, int) and not isinstance(load, bool):
                load = str(load)
            if load not in GENERATOR_LOADS:
                raise reader.fail(path, "output_load", f"{load!r} is not one of \"INF\", \"50\"")
            settings["output_load"] = load
            channel = entry.get("channel", 1)
            if channel not in (1, 2):
                raise reader.fail(path, "channel", f"must be 1 or 2, got {channel!r}")
        elif role == "scope":
            for key, default in (("current_channel", 1), ("voltage_channel", 2)):
                channel = entry.get(key, default)
                if channel not in (1, 2, 3, 4):
                    raise reader.fail(path, key, f"must be 1, 2, 3 or 4, got {channel!r}")
        if backend == "visa" and role != "amplifier" and not resource:
            raise reader.fail(path, None, f"missing key 'resource': the VISA/IVI address of the {role}")
        instruments[role] = InstrumentConfig(role, driver, resource, settings)
    return instruments


def _validate_amplifier(reader: _Reader, entry: dict, path: str, backend: str) -> dict[str, Any]:
    mode = reader.string(entry, "mode", path, choices=MODES)
    gain = reader.number(entry, "gain_v_per_a", path)
    allowed = GAINS_V_PER_A[mode]
    if not any(math.isclose(gain, value, rel_tol=1e-9) for value in allowed):
        listed = ", ".join(f"{value:g}" for value in allowed)
        raise reader.fail(path, "gain_v_per_a",
                          f"{gain:g} V/A is not a DHPCA-100 gain in {mode} mode (allowed: {listed})")

    default_control = "simulated" if backend == "sim" else "manual"
    control = reader.string(entry, "control", path, choices=AMPLIFIER_CONTROLS, required=False)
    control = control or default_control
    if backend == "visa" and control == "simulated":
        raise reader.fail(path, "control", "\"simulated\" only works with backend = \"sim\"")
    if backend == "sim" and control != "simulated":
        raise reader.fail(path, "control", "the simulated bench needs control = \"simulated\" (or none)")

    settings = {"gain_v_per_a": float(gain), "mode": mode, "control": control}
    if "adapter_id" in entry:
        adapter_id = entry["adapter_id"]
        if control != "luci10":
            raise reader.fail(path, "adapter_id", "only applies with control = \"luci10\"")
        if isinstance(adapter_id, bool) or not isinstance(adapter_id, int) or adapter_id < 0:
            raise reader.fail(path, "adapter_id", f"must be a non-negative integer, got {adapter_id!r}")
        settings["adapter_id"] = adapter_id
    return settings


def default_bench_path() -> Path:
    """Return the path of the default bench file, ``benches/sim.toml`` in the source tree."""
    return Path(__file__).resolve().parent.parent / "benches" / "sim.toml"
