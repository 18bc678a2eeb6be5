"""Procedure parameters that keep full precision in the results header and name their faults.

PyMeasure's ``FloatParameter`` writes its value with ``%g`` (six significant digits) and
raises "FloatParameter value is below the minimum" without naming the parameter or the
bound. The parameters here write ``repr(float)``, so a header read back with
``Results.load`` gives the exact value that was run, and their errors name the value, the
bound and the unit.
"""

from __future__ import annotations

import math

from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter


class ParameterValueError(ValueError):
    """A protocol parameter was given a value it cannot take."""


def _split_units(text: str, units: str | None, name: str) -> str:
    """Return ``text`` without a trailing unit; raise if the unit is not ``units``."""
    value, _, found_units = text.strip().partition(" ")
    found_units = found_units.strip()
    if found_units and found_units != units:
        raise ParameterValueError(
            f"{name}: value {text!r} is in {found_units!r}, expected {units!r}"
        )
    return value


def _check_range(name: str, number: float, units: str | None, minimum: float, maximum: float) -> float:
    """Return ``number``, or raise ParameterValueError naming the bound it breaks."""
    unit = f" {units}" if units else ""
    if number < minimum:
        raise ParameterValueError(f"{name}: {number!r}{unit} is below the minimum {minimum!r}{unit}")
    if number > maximum:
        raise ParameterValueError(f"{name}: {number!r}{unit} is above the maximum {maximum!r}{unit}")
    return number


class ExactFloatParameter(FloatParameter):
    """Float parameter with a unit, strict bounds and a lossless text form."""

    def convert(self, value):
        if isinstance(value, str):
            value = _split_units(value, self.units, self.name)
        if isinstance(value, bool):
            raise ParameterValueError(f"{self.name}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterValueError(f"{self.name}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ParameterValueError(f"{self.name}: expected a finite number, got {value!r}")

        return _check_range(self.name, number, self.units, self.minimum, self.maximum)

    def __str__(self):
        if not self.is_set():
            return ""
        unit = f" {self.units}" if self.units else ""
        return f"{self._value!r}{unit}"


class CountParameter(IntegerParameter):
    """Integer parameter (a count) whose errors name the parameter and the bound."""

    def convert(self, value):
        if isinstance(value, str):
            value = _split_units(value, self.units, self.name)
        if isinstance(value, bool):
            raise ParameterValueError(f"{self.name}: expected an integer, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ParameterValueError(f"{self.name}: expected an integer, got {value!r}")
            value = int(value)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ParameterValueError(f"{self.name}: expected an integer, got {value!r}") from None

        if number < self.minimum:
            raise ParameterValueError(f"{self.name}: {number} is below the minimum {self.minimum}")
        if number > self.maximum:
            raise ParameterValueError(f"{self.name}: {number} is above the maximum {self.maximum}")
        return number


class FloatListParameter(Parameter):
    """Non-empty list of floats with a unit, each value within ``[minimum, maximum]``.

    Accepts a list or tuple of numbers, a single number, or text: the form that ``str``
    writes (``"[2.0,2.5,3.0] V"``), or comma-separated numbers without brackets
    (``"2,2.5,3"``). The value is stored as a tuple.
    """

    def __init__(self, name, units=None, minimum=-1e9, maximum=1e9, **kwargs):
        self.units = units
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(name, **kwargs)
        self._help_fields.extend(["minimum", "maximum"])

    def convert(self, value):
        if isinstance(value, str):
            text = value.strip()
            if self.units and text.endswith(" " + self.units):
                text = text[: -len(self.units)].strip()
            if text.startswith("[") != text.endswith("]"):
                raise ParameterValueError(
                    f"{self.name}: expected a list such as [1.0,2.0] or 1.0,2.0, got {value!r}"
                )
            if text.startswith("["):
                text = text[1:-1]
            items = [item for item in text.split(",") if item.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            items = [value]
        else:
            raise ParameterValueError(f"{self.name}: expected a list of numbers, got {value!r}")

        if not items:
            raise ParameterValueError(f"{self.name}: the list is empty")
        numbers = []
        for item in items:
            if isinstance(item, bool):
                raise ParameterValueError(f"{self.name}: {item!r} is not a number")
            try:
                number = float(item)
            except (TypeError, ValueError):
                raise ParameterValueError(f"{self.name}: {item!r} is not a number") from None
            if not math.isfinite(number):
                raise ParameterValueError(f"{self.name}: {item!r} is not a finite number")
            numbers.append(_check_range(self.name, number, self.units, self.minimum, self.maximum))
        return tuple(numbers)

    def __str__(self):
        if not self.is_set():
            return ""
        text = "[" + ",".join(repr(number) for number in self._value) + "]"
        if self.units:
            text += f" {self.units}"
        return text
