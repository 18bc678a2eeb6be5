"""Fit the results files of one measurement campaign into a device parameter document.

Steps: find each protocol's file in the results directory, check its columns and run
status, then fit in order

1. bias-decay: tau per bias, Lambda = exp(-step_interval_s / tau), sigmoid Lambda(V);
2. short-term: dF per pulse, the (amplitude, width) table, df_step, df_max, the dF
   surface and the pulse-energy power law;
3. conductance: long-term levels (long-term-levels file, else the short-term baselines),
   the pre-SET state (set file), G_min, the read voltage and the weight map;

and assemble the document of ``docs/device-file.md``. Required: a short-term file and a
bias-decay file. Long-term-levels and set files are used when present.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from fitting.conductance import (
    ConductanceLevel,
    levels_from_pulses,
    pre_set_state,
    read_voltage_v,
    siemens_per_weight_unit,
)
from fitting.decay import DecayAnalysis, compare_decay_models, fit_bias_decay
from fitting.decay_factor import SigmoidFit, fit_sigmoid, lambda_from_tau
from fitting.defaults import DEFAULT_STEP_INTERVAL_S, DF_STEP_GRID_S
from fitting.device_file import FORMAT_NAME, FORMAT_VERSION, validate_device_document
from fitting.df_models import DfSurfaceFit, describe_surface, fit_df_surface
from fitting.errors import FitQualityError, FitWarnings, ResultsFileError
from fitting.fit_checks import fit_statistics
from fitting.pulse_energy import PowerLawFit, fit_pulse_energy
from fitting.quantity import exact, quantity
from fitting.results_files import ResultsFile, check_time_increases, find_campaign_files
from fitting.short_term import (
    PulseResponse,
    ResponseCell,
    df_max_from_table,
    df_step_from_spread,
    extract_pulse_responses,
    tabulate_responses,
)

log = logging.getLogger(__name__)

TIME_BASE = (
    "Lambda is the factor by which F shrinks over one network step of step_interval_s "
    "seconds: Lambda = exp(-step_interval_s / tau)"
)
REQUIRED_PROTOCOLS = ("short-term", "bias-decay")
MIN_BIASES = 5
MIN_ENERGY_CELLS = 3


@dataclass
class CampaignFit:
    """Everything fitted from one campaign: the device document and the fits behind it."""

    document: dict[str, Any]
    files: dict[str, ResultsFile]
    decay: DecayAnalysis
    sigmoid: SigmoidFit
    cells: list[ResponseCell]
    df_surface: DfSurfaceFit | None
    power_law: PowerLawFit
    levels: list[ConductanceLevel]
    pre_set: ConductanceLevel | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)


def fit_campaign(
    results_dir: str | Path,
    step_interval_s: float = DEFAULT_STEP_INTERVAL_S,
    continue_on_warning: bool = False,
    df_step_grid_s: float = DF_STEP_GRID_S,
    plots_dir: str | Path | None = None,
) -> CampaignFit:
    """Fit a campaign's results files and return the validated device document with its fits.

    ``step_interval_s`` is the network step in seconds that converts tau into Lambda (the
    published material does not state it). ``df_step_grid_s`` is the grid, in siemens, to
    which the largest dF spread is rounded up to give ``df_step``. With ``plots_dir``, one
    PNG per fit is written there (``fitting.plots``) once the document is valid.

    Raises ``ValueError`` for an invalid step or grid, ``ResultsFileError`` for missing or
    malformed input, ``FitQualityError`` for a quality problem (unless
    ``continue_on_warning``, which records it under ``warnings`` instead) and
    ``DeviceFileError`` if the assembled document does not validate.
    """
    _require_positive(step_interval_s, "step_interval_s", "number of seconds")
    _require_positive(df_step_grid_s, "df_step_grid_s", "conductance in siemens")
    fit_warnings = FitWarnings(continue_on_warning=continue_on_warning)
    files = _campaign_files(results_dir, fit_warnings)

    decay = fit_bias_decay(files["bias-decay"], fit_warnings)
    sigmoid, lambdas = _fit_decay_factor(decay, step_interval_s, fit_warnings)
    short_term = _fit_short_term(files["short-term"], df_step_grid_s, fit_warnings)
    levels, levels_source, pre_set = _fit_levels(files, short_term.pulses, fit_warnings)

    parts = {
        "conductance": _conductance_section(
            files, levels, pre_set, levels_source, short_term.df_step_s, fit_warnings
        ),
        "short_term": _short_term_section(short_term, df_step_grid_s),
        "decay": _decay_section(decay, sigmoid, lambdas, step_interval_s),
        "pulse_energy": _pulse_energy_section(short_term.power_law),
        "bias_power": _bias_power_section(decay),
    }
    document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        **parts,
        "validity": _validity(decay, sigmoid, short_term, levels, parts),
        "warnings": fit_warnings.entries,
        "provenance": _provenance(files),
    }
    validate_device_document(document, f"device document fitted from {results_dir}")

    fit = CampaignFit(
        document=document, files=files, decay=decay, sigmoid=sigmoid, cells=short_term.cells,
        df_surface=short_term.surface, power_law=short_term.power_law, levels=levels,
        pre_set=pre_set, warnings=fit_warnings.entries,
    )
    if plots_dir is not None:
        from fitting.plots import write_fit_plots  # matplotlib loads only when plots are wanted

        write_fit_plots(fit, plots_dir)
    return fit


@dataclass
class _ShortTermFit:
    pulses: list[PulseResponse]
    cells: list[ResponseCell]
    surface: DfSurfaceFit | None
    power_law: PowerLawFit
    df_step_s: float
    largest_std_s: float


def _require_positive(value: Any, name: str, kind: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive {kind}, got {value!r}")


def _fit_short_term(
    results: ResultsFile, df_step_grid_s: float, fit_warnings: FitWarnings
) -> _ShortTermFit:
    pulses = extract_pulse_responses(results, fit_warnings)
    cells = tabulate_responses(pulses, "short-term", fit_warnings)
    if not cells:
        raise FitQualityError(f"{results.path}: no pulse gave a usable dF")

    surface = fit_df_surface(
        np.array([cell.amplitude_v for cell in cells]),
        np.array([cell.width_s for cell in cells]),
        np.array([cell.df_mean_s for cell in cells]),
        _stderrs_or_none([cell.df_stderr_s for cell in cells]),
        fit_warnings,
    )
    power_law = _fit_power_law(cells, fit_warnings)
    try:
        df_step_s, largest_std_s = df_step_from_spread(cells, df_step_grid_s)
    except ValueError as error:
        raise FitQualityError(f"{results.path}: {error}") from error
    return _ShortTermFit(pulses, cells, surface, power_law, df_step_s, largest_std_s)


def _fit_levels(
    files: dict[str, ResultsFile], short_term_pulses: list[PulseResponse], fit_warnings: FitWarnings
) -> tuple[list[ConductanceLevel], str, ConductanceLevel | None]:
    """Return the long-term levels, the file they came from and the pre-SET state."""
    if "long-term-levels" in files:
        source = "long-term-levels"
        pulses = extract_pulse_responses(files[source], fit_warnings)
    else:
        source = "short-term"
        pulses = short_term_pulses
    levels = levels_from_pulses(pulses, source, fit_warnings)
    if not levels:
        raise FitQualityError(f"{files[source].path}: no pulse gave a baseline conductance")
    pre_set = pre_set_state(files["set"], fit_warnings) if "set" in files else None
    return levels, source, pre_set


def _campaign_files(results_dir: str | Path, fit_warnings: FitWarnings) -> dict[str, ResultsFile]:
    files = find_campaign_files(results_dir, fit_warnings)
    missing = [protocol for protocol in REQUIRED_PROTOCOLS if protocol not in files]
    if missing:
        found = ", ".join(f"{name} ({item.path.name})" for name, item in files.items()) or "none"
        raise ResultsFileError(
            f"{results_dir}: no results file of the {' and '.join(missing)} protocol; found: "
            f"{found}. Fitting needs one short-term and one bias-decay run"
        )
    for protocol in (*REQUIRED_PROTOCOLS, "long-term-levels", "set"):
        if protocol in files:
            check_time_increases(files[protocol], fit_warnings)
    return files


def _fit_decay_factor(
    decay: DecayAnalysis, step_interval_s: float, fit_warnings: FitWarnings
) -> tuple[SigmoidFit, list[tuple[float, float | None]]]:
    biases = ", ".join(f"{point.bias_v:+g} V" for point in decay.points)
    if len(decay.points) < MIN_BIASES:
        raise FitQualityError(
            f"the sigmoid Lambda(V) has 4 parameters and needs at least {MIN_BIASES} biases with a "
            f"usable decay fit, got {len(decay.points)} ({biases or 'none'}); measure more biases"
        )
    lambdas = [lambda_from_tau(point.tau_s, point.tau_stderr_s, step_interval_s) for point in decay.points]
    bias_v = np.array([point.bias_v for point in decay.points])
    values = np.array([value for value, _ in lambdas])
    stderrs = _stderrs_or_none([stderr for _, stderr in lambdas])
    sigmoid = fit_sigmoid(bias_v, values, stderrs, fit_warnings)
    return sigmoid, lambdas


def _fit_power_law(cells: list[ResponseCell], fit_warnings: FitWarnings) -> PowerLawFit:
    with_energy = [cell for cell in cells if cell.energy_mean_j is not None]
    if len(with_energy) < MIN_ENERGY_CELLS:
        raise FitQualityError(
            f"the pulse energy power law needs at least {MIN_ENERGY_CELLS} (amplitude, width) "
            f"cells with a measured 'Pulse energy (J)', got {len(with_energy)}"
        )
    power_law = fit_pulse_energy(
        np.array([cell.df_mean_s for cell in with_energy]),
        np.array([cell.energy_mean_j for cell in with_energy]),
        fit_warnings,
    )
    if power_law is None:
        raise FitQualityError(
            "the pulse energy power law could not be fitted (see the warnings above); the "
            "device file cannot be written without it"
        )
    return power_law


def _conductance_section(
    files: dict[str, ResultsFile],
    levels: list[ConductanceLevel],
    pre_set: ConductanceLevel | None,
    levels_source: str,
    df_step_s: float,
    fit_warnings: FitWarnings,
) -> dict:
    states = levels if pre_set is None else [*levels, pre_set]
    lowest = min(states, key=lambda state: state.g_s)
    highest = max(levels, key=lambda level: level.g_s)
    unit_s = siemens_per_weight_unit(df_step_s)
    section = {
        "read_voltage": exact(read_voltage_v(files["short-term"], fit_warnings), "V"),
        "g_min": quantity(
            lowest.g_s, lowest.g_stderr_s, "S", level=lowest.level, source=lowest.source,
            note="lowest long-term state of the campaign: every level and the pre-SET state",
        ),
        "g_max": quantity(highest.g_s, highest.g_stderr_s, "S", level=highest.level),
        "levels": [
            {
                "level": level.level,
                "g": quantity(level.g_s, level.g_stderr_s, "S"),
                "n_pulses": level.n_pulses,
                "df_mean_s": level.df_mean_s,
            }
            for level in levels
        ],
        "levels_source": levels_source,
        "siemens_per_weight_unit": exact(
            unit_s, "S", note="G_meas = g_min + siemens_per_weight_unit * G_sim; equals df_step / 0.5"
        ),
    }
    if pre_set is not None:
        section["pre_set"] = quantity(pre_set.g_s, pre_set.g_stderr_s, "S", source=pre_set.source)
    return section


def _short_term_section(short_term: _ShortTermFit, df_step_grid_s: float) -> dict:
    cells = short_term.cells
    surface = short_term.surface
    df_step_s = short_term.df_step_s
    largest_std_s = short_term.largest_std_s
    top = df_max_from_table(cells)
    return {
        "df_step": exact(
            df_step_s, "S",
            note=(
                f"largest dF standard deviation over the table ({largest_std_s:.4g} S) rounded "
                f"up to a multiple of {df_step_grid_s:.4g} S"
            ),
        ),
        "df_std_max": exact(largest_std_s, "S"),
        "df_max": quantity(
            abs(top.df_mean_s), top.df_stderr_s, "S",
            amplitude_v=top.amplitude_v, width_s=top.width_s,
            note="largest mean dF of the table, as measured",
        ),
        "table": [cell.as_table_row() for cell in cells],
        "model": describe_surface(surface) if surface is not None else None,
    }


def _decay_section(
    decay: DecayAnalysis,
    sigmoid: SigmoidFit,
    lambdas: list[tuple[float, float | None]],
    step_interval_s: float,
) -> dict:
    low_bias, high_bias = sigmoid.bias_range_v
    lambda_min, lambda_min_stderr = sigmoid.lambda_at(low_bias)
    lambda_max, lambda_max_stderr = sigmoid.lambda_at(high_bias)
    result = sigmoid.result
    units = {"L": "1", "k": "1/V", "V0": "V", "Lambda0": "1"}
    return {
        "step_interval_s": exact(step_interval_s, "s"),
        "time_base": TIME_BASE,
        "lambda_min": quantity(lambda_min, lambda_min_stderr, "1", bias_v=low_bias),
        "lambda_max": quantity(lambda_max, lambda_max_stderr, "1", bias_v=high_bias),
        "sigmoid": {
            name: quantity(result.params[name].value, result.params[name].stderr, unit)
            for name, unit in units.items()
        },
        "sigmoid_fit": {
            "formula": "Lambda(V) = L / (1 + exp(-k (V - V0))) + Lambda0",
            "weighted": sigmoid.lambda_stderrs is not None,
            **fit_statistics(result),
        },
        "curve_model": "G(t) = offset + amplitude * exp(-t / tau), t = time since the main pulse",
        "points": [
            {
                "bias_v": point.bias_v,
                "tau": quantity(point.tau_s, point.tau_stderr_s, "s"),
                "lambda": quantity(value, stderr, "1"),
                "amplitude": quantity(
                    point.amplitude_ns * 1e-9,
                    None if point.amplitude_stderr_ns is None else point.amplitude_stderr_ns * 1e-9,
                    "S",
                ),
                "n_curves": point.n_curves,
            }
            for point, (value, stderr) in zip(decay.points, lambdas)
        ],
        "skipped_biases_v": decay.skipped_biases_v,
        "model_comparison": [compare_decay_models(point) for point in decay.points],
    }


def _pulse_energy_section(power_law: PowerLawFit) -> dict:
    return {
        "c": quantity(power_law.c_j, power_law.c_stderr_j, "J"),
        "alpha": quantity(power_law.alpha, power_law.alpha_stderr, "1"),
        "df_unit": "nS",
        "formula": "E = c * (|dF| / 1 nS) ** alpha",
        "fit": {
            "method": "unweighted least squares of ln(E) against ln(|dF| / 1 nS) over the table cells",
            "log_residual_rms": power_law.log_residual_rms,
            **fit_statistics(power_law.result),
        },
    }


def _bias_power_section(decay: DecayAnalysis) -> dict:
    largest = max(abs(point.bias_v) for point in decay.points)
    return {
        "v_bias": exact(
            largest, "V",
            note="worst-case bias: the largest |bias| of the decay fit, held on every synapse",
        ),
        "formula": "P = v_bias ** 2 * G_meas",
    }


def _validity(
    decay: DecayAnalysis,
    sigmoid: SigmoidFit,
    short_term: _ShortTermFit,
    levels: list[ConductanceLevel],
    parts: dict,
) -> dict:
    surface = short_term.surface
    power_law = short_term.power_law
    taus = [point.tau_s for point in decay.points]
    validity = {
        "decay_curves": {
            "bias_v": list(sigmoid.bias_range_v),
            "time_since_pulse_s": list(decay.time_since_pulse_range_s),
            "tau_s": [min(taus), max(taus)],
        },
        "sigmoid": {
            "bias_v": list(sigmoid.bias_range_v),
            "lambda": [parts["decay"]["lambda_min"]["value"], parts["decay"]["lambda_max"]["value"]],
        },
        "pulse_energy": {
            "df_s": [float(power_law.df_s.min()), float(power_law.df_s.max())],
            "energy_j": [float(power_law.energy_j.min()), float(power_law.energy_j.max())],
        },
        "conductance": {
            "g_s": [parts["conductance"]["g_min"]["value"], max(level.g_s for level in levels)],
            "read_voltage_v": parts["conductance"]["read_voltage"]["value"],
        },
    }
    if surface is not None:
        validity["short_term_model"] = {
            "amplitude_v": list(surface.amplitude_range_v),
            "width_s": list(surface.width_range_s),
        }
    return validity


def _provenance(files: dict[str, ResultsFile]) -> dict:
    used = [
        protocol for protocol in ("bias-decay", "short-term", "long-term-levels", "set")
        if protocol in files
    ]
    benches = {protocol: files[protocol].bench_description() for protocol in used}
    distinct = {repr(bench) for bench in benches.values()}
    return {
        "inputs": [
            {
                "protocol": protocol,
                "path": str(files[protocol].path),
                "sha256": files[protocol].sha256,
                "procedure": files[protocol].procedure,
                "status": files[protocol].status,
            }
            for protocol in used
        ],
        "software": f"memsyn {_software_version()}",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "bench": next(iter(benches.values())) if len(distinct) == 1 else benches,
    }


def _software_version() -> str:
    try:
        return version("memsyn")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def _stderrs_or_none(stderrs: list[float | None]) -> np.ndarray | None:
    if any(stderr is None for stderr in stderrs):
        return None
    return np.array(stderrs, dtype=float)
