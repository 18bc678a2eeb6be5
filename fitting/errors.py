"""Errors of the fitting package and the collector of data-quality warnings.

Two kinds of problem stop a fit:

* input errors (``ResultsFileError``): a missing file or column, a column in the wrong
  unit, a file that cannot be parsed. Nothing sensible can be fitted from such input, so
  they are raised in every mode.
* quality problems found while fitting (a fit that did not converge, a parameter at its
  bound, an uncertainty that could not be estimated, too few points, NaN values or time
  going backwards). ``FitWarnings.flag`` raises them as ``FitQualityError`` by default.
  With ``continue_on_warning`` it logs them and keeps them, and the device file lists
  them under ``warnings``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class FittingError(Exception):
    """Base class of every error the fitting package raises on bad input or a bad fit."""


class ResultsFileError(FittingError):
    """A results file is missing, unreadable, or lacks a column in the expected unit."""


class FitQualityError(FittingError):
    """A data-quality problem found while fitting, raised because warnings are not allowed."""


class DeviceFileError(FittingError):
    """A device parameter file is missing a field or contains an invalid value."""


@dataclass
class FitWarnings:
    """Collector of data-quality problems found during one fit of a campaign.

    ``flag`` raises ``FitQualityError`` unless ``continue_on_warning`` is set. In that
    case the problem is logged as a warning and kept in ``entries``, which the device file
    exports as its ``warnings`` list.
    """

    continue_on_warning: bool = False
    entries: list[dict[str, str]] = field(default_factory=list)

    def flag(self, where: str, message: str) -> None:
        """Report a problem at ``where`` (a protocol, curve or fit name)."""
        if not self.continue_on_warning:
            raise FitQualityError(
                f"{where}: {message} (rerun with --continue-on-warning to write the device "
                "file with this problem listed under 'warnings')"
            )
        log.warning("%s: %s", where, message)
        self.entries.append({"where": where, "message": message})
