"""Campaigns: several protocols run in sequence on one bench, from one TOML campaign file.

A campaign file::

    [campaign]
    name = "published"                 # optional, defaults to the file name
    description = "..."                # optional

    [[steps]]
    protocol = "iv-sweep"              # a protocol name (see ``protocols.PROTOCOLS``)
    name = "iv"                        # optional, defaults to the protocol name
    [steps.parameters]                 # optional; parameter names as on the command line
    cycles = 30

Parameter names are the procedure attributes with their SI unit in the name
(``pulse_width_s = 500e-6``); lists are TOML arrays. Every step is checked when the file
is loaded (protocol, parameter names and values), and every step's plan passes pre-flight
against the bench before the first step turns anything on.

Step ``i`` (counted from 1) writes ``NN-<name>.csv`` in the output folder, ``NN`` being
``i`` with two digits. ``campaign.json`` beside them records the campaign, each step's
file, status and reason; it is rewritten after every step. The campaign stops at the
first step that does not complete; the steps after it are recorded as ``not run``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from instruments.safety import SafetyLimitError
from protocols import PROTOCOLS
from protocols.actions import RangeExceededError
from protocols.base import BenchProcedure
from protocols.parameters import ParameterValueError
from protocols.results_file import ABORTED, COMPLETED, RunRecord
from protocols.runner import (
    ProgressCallback,
    StopSignal,
    prepare_procedure,
    run_procedure,
    software_version,
    utc_now,
)

log = logging.getLogger(__name__)

CAMPAIGN_RECORD = "campaign.json"
NOT_RUN = "not run"
_CAMPAIGN_KEYS = {"name", "description"}
_STEP_KEYS = {"protocol", "name", "parameters"}
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class CampaignError(ValueError):
    """A campaign file is missing or malformed, or requests something no protocol offers."""


@dataclass
class CampaignStep:
    """One step of a campaign: the protocol, its results-file name and its parameters."""

    index: int
    name: str
    protocol: str
    parameters: dict[str, Any]

    @property
    def file_name(self) -> str:
        return f"{self.index:02d}-{self.name}.csv"

    def procedure(self) -> BenchProcedure:
        """Return a new procedure of this step with its parameters set."""
        return make_procedure(self.protocol, self.parameters)


@dataclass
class Campaign:
    """A validated campaign file."""

    path: Path
    name: str
    description: str
    steps: list[CampaignStep]
    sha256: str


@dataclass
class CampaignRecord:
    """Record of a campaign run: the files it wrote and the end state of each step."""

    campaign: str
    campaign_file: str
    campaign_sha256: str
    status: str
    started_utc: str
    ended_utc: str = ""
    software_version: str = ""
    seed: int | None = None
    steps: list[dict] = field(default_factory=list)


def make_procedure(protocol: str, parameters: dict[str, Any]) -> BenchProcedure:
    """Return a procedure of ``protocol`` with ``parameters`` (attribute name -> value) set.

    Raises CampaignError for an unknown protocol, an unknown parameter or a bad value.
    """
    if protocol not in PROTOCOLS:
        raise CampaignError(
            f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}"
        )
    procedure = PROTOCOLS[protocol]()
    known = procedure.parameter_objects()
    for name, value in parameters.items():
        if name not in known:
            raise CampaignError(
                f"protocol {protocol!r} has no parameter {name!r}; its parameters are "
                f"{', '.join(sorted(known))}"
            )
        try:
            known[name].value = value
        except (ParameterValueError, ValueError, TypeError) as error:
            raise CampaignError(f"parameter {name!r} of protocol {protocol!r}: {error}") from None
        setattr(procedure, name, known[name].value)
    return procedure


def load_campaign(path: str | os.PathLike) -> Campaign:
    """Read and validate a campaign file; raise CampaignError naming the file and the step."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CampaignError(f"campaign file {path} not found") from None
    except OSError as error:
        raise CampaignError(f"cannot read campaign file {path}: {error}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CampaignError(f"{path}: not a valid TOML file: {error}") from None

    unknown = set(data) - {"campaign", "steps"}
    if unknown:
        raise CampaignError(
            f"{path}: unknown table or key {min(unknown)!r}; a campaign file has "
            "[campaign] and [[steps]]"
        )
    header = data.get("campaign", {})
    if not isinstance(header, dict):
        raise CampaignError(f"{path}: 'campaign' must be a table ([campaign])")
    for key in header:
        if key not in _CAMPAIGN_KEYS:
            raise CampaignError(f"{path}: [campaign] has unknown key {key!r}; allowed: name, description")
    name = _string(header, "name", f"{path}: [campaign]", default=path.stem)
    description = _string(header, "description", f"{path}: [campaign]", default="")

    raw_steps = data.get("steps")
    if raw_steps is None:
        raise CampaignError(f"{path}: no steps; add at least one [[steps]] table with a protocol")
    if not isinstance(raw_steps, list) or not all(isinstance(item, dict) for item in raw_steps):
        raise CampaignError(f"{path}: 'steps' must be an array of tables ([[steps]])")
    if not raw_steps:
        raise CampaignError(f"{path}: no steps; add at least one [[steps]] table with a protocol")

    steps = [_parse_step(path, index, item) for index, item in enumerate(raw_steps, start=1)]
    names = [step.name for step in steps]
    for step in steps:
        if names.count(step.name) > 1:
            raise CampaignError(
                f"{path}: step name {step.name!r} is used more than once; give each step a "
                "different name"
            )
    return Campaign(path, name, description, steps, hashlib.sha256(raw).hexdigest())


def _parse_step(path: Path, index: int, item: dict) -> CampaignStep:
    where = f"{path}: step {index}"
    for key in item:
        if key not in _STEP_KEYS:
            raise CampaignError(f"{where}: unknown key {key!r}; allowed: protocol, name, parameters")
    if "protocol" not in item:
        raise CampaignError(f"{where}: missing key 'protocol' (one of {', '.join(PROTOCOLS)})")
    protocol = _string(item, "protocol", where)
    if protocol == "campaign":
        raise CampaignError(f"{where}: a campaign step cannot run another campaign")
    name = _string(item, "name", where, default=protocol)
    if not _NAME_PATTERN.match(name):
        raise CampaignError(
            f"{where}: name {name!r} must start with a letter or digit and contain only "
            "letters, digits, '.', '_' and '-' (it becomes a file name)"
        )
    parameters = item.get("parameters", {})
    if not isinstance(parameters, dict):
        raise CampaignError(f"{where}: 'parameters' must be a table ([steps.parameters])")
    try:
        make_procedure(protocol, parameters)
    except CampaignError as error:
        raise CampaignError(f"{where}: {error}") from None
    return CampaignStep(index, name, protocol, dict(parameters))


def _string(table: dict, key: str, where: str, default: str | None = None) -> str:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def prepare_campaign(campaign: Campaign, bench, out_dir: str | os.PathLike) -> list[BenchProcedure]:
    """Check every step against the bench and the output folder; return their procedures.

    Raises CampaignError if a results file of the campaign already exists in ``out_dir``,
    and PreflightError (naming the step) if a plan fails pre-flight. Nothing is sent to an
    instrument.
    """
    out_dir = Path(out_dir)
    for name in [CAMPAIGN_RECORD] + [step.file_name for step in campaign.steps]:
        if (out_dir / name).exists():
            raise CampaignError(
                f"{out_dir / name} already exists; choose an empty output folder so no earlier "
                "results are overwritten"
            )

    procedures = []
    for step in campaign.steps:
        procedure = step.procedure()
        try:
            prepare_procedure(procedure, bench)
        except (SafetyLimitError, RangeExceededError) as error:
            raise type(error)(f"step {step.index} ({step.name}): {error}") from error
        procedures.append(procedure)
    return procedures


def run_campaign(
    campaign: Campaign,
    bench,
    out_dir: str | os.PathLike,
    *,
    seed: int | None = None,
    keep_waveforms: bool = False,
    progress: ProgressCallback | None = None,
    stop: StopSignal | None = None,
) -> CampaignRecord:
    """Run every step of ``campaign`` on ``bench``, writing their files into ``out_dir``.

    All plans pass pre-flight before the first step starts. The campaign stops at the
    first step that does not complete. ``progress`` receives the percentage of the whole
    campaign (steps weighted by their planned bench time) and the running step's name.
    """
    out_dir = Path(out_dir)
    procedures = prepare_campaign(campaign, bench, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stop = stop if stop is not None else StopSignal()

    record = CampaignRecord(
        campaign=campaign.name, campaign_file=str(campaign.path),
        campaign_sha256=campaign.sha256, status="running", started_utc=utc_now(),
        software_version=software_version(), seed=seed,
        steps=[_step_entry(step, NOT_RUN, None) for step in campaign.steps],
    )
    durations = [max(procedure.summary.duration_s, 1e-9) for procedure in procedures]
    total_s = sum(durations)
    done_s = 0.0
    _write_record(out_dir, record)

    status = COMPLETED
    for step, procedure, duration_s in zip(campaign.steps, procedures, durations):
        log.info("campaign %s: step %d of %d, %s (%s)", campaign.name, step.index,
                 len(campaign.steps), step.name, step.protocol)
        step_progress = _scaled_progress(progress, done_s, duration_s, total_s, step.name)
        result = run_procedure(
            procedure, bench, out_dir / step.file_name, seed=seed,
            keep_waveforms=keep_waveforms, progress=step_progress, stop=stop,
        )
        record.steps[step.index - 1] = _step_entry(step, result.status, result)
        _write_record(out_dir, record)
        done_s += duration_s
        if result.status != COMPLETED:
            status = result.status
            log.warning("campaign %s stopped at step %d (%s): %s", campaign.name, step.index,
                        step.name, result.reason)
            break
        if stop.is_set():
            status = ABORTED
            log.warning("campaign %s stopped after step %d (%s): %s", campaign.name, step.index,
                        step.name, stop.reason)
            break

    record.status = status
    record.ended_utc = utc_now()
    _write_record(out_dir, record)
    return record


def _scaled_progress(progress, done_s, duration_s, total_s, name):
    if progress is None:
        return None

    def report(percent: float, protocol: str) -> None:
        progress(100.0 * (done_s + duration_s * percent / 100.0) / total_s, name)

    return report


def _step_entry(step: CampaignStep, status: str, result: RunRecord | None) -> dict:
    entry = {
        "index": step.index, "name": step.name, "protocol": step.protocol,
        "file": step.file_name, "parameters": step.parameters, "status": status,
    }
    if result is not None:
        details = asdict(result)
        details.pop("path")
        details.pop("status")
        entry.update(details)
    return entry


def _write_record(out_dir: Path, record: CampaignRecord) -> None:
    """Write ``campaign.json`` through a temporary file, so it is never half written."""
    final = out_dir / CAMPAIGN_RECORD
    partial = out_dir / (CAMPAIGN_RECORD + ".partial")
    partial.write_text(json.dumps(asdict(record), indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(partial, final)
