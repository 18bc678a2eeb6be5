"""The HTML report of a run: the figures a reader of the published study looks for."""

from memsyn.report.build import build_report

__all__ = ["build_report"]
