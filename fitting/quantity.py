"""The ``{"value", "stderr", "unit"}`` record of every fitted number in the device file."""

from __future__ import annotations

import math
from typing import Any


def quantity(value: float, stderr: float | None, unit: str, **extra: Any) -> dict[str, Any]:
    """Return a device-file quantity; a NaN, infinite or missing stderr becomes None.

    ``unit`` is an SI unit string (``"S"``, ``"s"``, ``"J"``, ``"V"``, ``"1/V"``) or ``"1"``
    for a dimensionless number. ``extra`` entries (such as ``note``) are kept beside them.
    """
    if stderr is not None:
        stderr = float(stderr)
        if not math.isfinite(stderr):
            stderr = None
    record: dict[str, Any] = {"value": float(value), "stderr": stderr, "unit": unit}
    record.update(extra)
    return record


def exact(value: float, unit: str, **extra: Any) -> dict[str, Any]:
    """Return a quantity that is set by a rule or an input, so it has no uncertainty."""
    return quantity(value, None, unit, **extra)
