"""Meta-test: every public property of every driver class documents unit, type and range.

The summary of a property's docstring (its first paragraph, which PyMeasure-style
docstrings wrap over several lines) follows the PyMeasure habit, for example
"Control the pulse width in seconds (float strictly from 16e-9 to 1e6)." It must contain a
bracketed clause that starts with the value's type. Then:

* ``float`` (and arrays of floats) need a unit ("in volts", "in V/A", ...) and a range;
* ``int`` needs a range (counts and codes have no unit);
* a settable ``str`` needs its allowed values ("one of ...", "strictly 'A' or 'B'", quoted
  values, a length such as "1 to 12 letters") or "free text";
* ``bool`` needs nothing more.

Driver modules are found by import: every module of the ``instruments`` package, plus the
driver modules listed below, which are skipped while they do not exist yet. Every class
defined in them counts as a driver class, except exceptions, protocols and dataclasses
(plain value records such as a settings snapshot).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from typing import Protocol

import pytest

import instruments

#: Driver modules that must be covered once they exist.
DRIVER_MODULES = (
    "instruments.keysight_m9601a",
    "instruments.ktm960x_ctypes",
    "instruments.femto_dhpca100",
    "instruments.digital_output",
    "instruments.keysight_33500b",
    "instruments.rs_rte1104",
)

TYPE_CLAUSE = re.compile(
    r"\((?P<type>float|int|bool|str|numpy array|array|tuple|AmplifierSetting)\b(?P<rest>[^)]*)\)"
)
UNIT = re.compile(
    r"\bin (volts?|V|amperes?|amps?|A|seconds?|s|hertz|Hz|ohms?|siemens|S|V/A|A/V|joules?|J|watts?|W|"
    r"samples?|points?|divisions?|V/div|s/div|degrees?|percent|%)(?![\w/])|\bdimensionless\b|\bunitless\b",
    re.IGNORECASE,
)
STR_VALUES = re.compile(
    r"\bone of\b|\bstrictly\b|\bfree(-form| text)\b|'[^']+'|\b\d+ to \d+\b", re.IGNORECASE
)
RANGE = re.compile(
    r"\bfrom\b.*\bto\b|\bone of\b|\bpositive\b|\bnon-negative\b|\bat least\b|\bat most\b|\bup to\b|"
    r"\bstrictly\b|\bwithin\b|\bany\b",
    re.IGNORECASE,
)


def docstring_summary(docstring: str) -> str:
    """Return the first paragraph of a docstring joined into one line."""
    lines = []
    for line in docstring.strip().splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    return " ".join(lines)


def docstring_problem(docstring: str | None, settable: bool = True) -> str | None:
    """Return what the docstring summary lacks, or None when it states unit, type and range.

    A read-only ``str`` (an identification, a resource name) needs no allowed values.
    """
    if not docstring or not docstring.strip():
        return "no docstring"
    first_line = docstring_summary(docstring)
    clause = TYPE_CLAUSE.search(first_line)
    if clause is None:
        return f"no '(type ...)' clause in {first_line!r}"

    value_type, rest = clause.group("type"), clause.group("rest")
    if value_type in ("float", "numpy array", "array") and not UNIT.search(first_line):
        return f"no unit ('in volts', 'in seconds', ...) in {first_line!r}"
    if value_type in ("float", "int", "numpy array", "array", "tuple") and not RANGE.search(rest):
        return f"no range ('from X to Y', 'positive', 'one of ...') in ({value_type}{rest})"
    if value_type == "str" and settable and not STR_VALUES.search(rest):
        return f"no allowed values ('one of ...', 'strictly ...' or 'free text') in (str{rest})"
    return None


def importable_modules() -> list[str]:
    found = {f"instruments.{info.name}" for info in pkgutil.iter_modules(instruments.__path__)}
    return sorted(found | set(DRIVER_MODULES))


def import_or_skip(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            pytest.skip(f"{module_name} does not exist yet")
        raise


def public_properties(module) -> list[tuple[str, property]]:
    """Return ``("Class.property", property)`` for classes defined in ``module``."""
    found = []
    for class_name, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module.__name__ or class_name.startswith("_"):
            continue
        if (
            issubclass(cls, BaseException)
            or Protocol in cls.__mro__[1:]
            or dataclasses.is_dataclass(cls)
        ):
            continue
        for name, member in vars(cls).items():
            if isinstance(member, property) and not name.startswith("_"):
                found.append((f"{class_name}.{name}", member))
    return found


@pytest.mark.parametrize("module_name", importable_modules())
def test_property_docstrings(module_name):
    module = import_or_skip(module_name)
    problems = []
    for qualified_name, prop in public_properties(module):
        problem = docstring_problem(prop.__doc__, settable=prop.fset is not None)
        if problem:
            problems.append(f"{qualified_name}: {problem}")
    assert not problems, "\n".join(problems)


def test_own_drivers_have_documented_properties():
    names = [
        name
        for module in DRIVER_MODULES[:4]
        for name, _ in public_properties(importlib.import_module(module))
    ]
    assert "KeysightM9601A.source_voltage_v" in names
    assert "FemtoDHPCA100.gain_v_per_a" in names


@pytest.mark.parametrize(
    "docstring",
    [
        "Control the pulse width in seconds (float strictly from 16e-9 to 1e6).",
        "Control the set-point in volts (float from limits.min_voltage_v to max_voltage_v).",
        "Control the transimpedance gain in V/A (float, one of 1e2 ... 1e8, decades, per mode).",
        "Control whether the output is on (bool).",
        "Control the mode (str, one of 'low_noise', 'high_speed').",
        "Get the control word (int from 0 to 127).",
        "Get the identification string (str, free text).",
        "Control the edge time in seconds (float strictly from 8.4e-9 to\n    1e-6; both edges).",
        "Control the trigger source (str strictly 'IMM', 'EXT'\n    or 'BUS').",
    ],
)
def test_checker_accepts_good_docstrings(docstring):
    assert docstring_problem(docstring) is None


def test_checker_accepts_read_only_text():
    assert docstring_problem("Get the VISA resource name (str).", settable=False) is None
    assert docstring_problem("Get the VISA resource name (str).", settable=True) is not None


@pytest.mark.parametrize(
    "docstring, reason",
    [
        (None, "no docstring"),
        ("Parameter range", "no '(type"),
        ("Control the pulse width (float from 1 to 2).", "no unit"),
        ("Control the pulse width in seconds (float).", "no range"),
        ("Control the mode (str).", "no allowed values"),
        ("Get the count (int).", "no range"),
        ("Control the level in volts.\n\n(float from 0 to 1)", "no '(type"),
        ("Control the mode (str, a mode name).", "no allowed values"),
    ],
)
def test_checker_rejects_bad_docstrings(docstring, reason):
    problem = docstring_problem(docstring)
    assert problem is not None
    assert reason in problem
