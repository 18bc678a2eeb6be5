"""The results-file format of docs/data-format.md: what other software must write."""

import re
from pathlib import Path

import pandas as pd
from pymeasure.experiment import Results

from protocols.results_file import read_run_status
from protocols.short_term import ShortTermProcedure

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-format.md"


def documented_minimal_example() -> str:
    text = DOC.read_text()
    section = text[text.index("## Writing results from other software"):]
    return re.search(r"```\n(#Procedure.*?)```", section, re.DOTALL).group(1)


def test_minimal_example_loads_everywhere(tmp_path):
    path = tmp_path / "elsewhere.csv"
    path.write_text(documented_minimal_example())

    frame = pd.read_csv(path, comment="#")
    assert list(frame.columns) == ShortTermProcedure.DATA_COLUMNS
    assert len(frame) == 2
    loaded = Results.load(str(path))
    assert isinstance(loaded.procedure, ShortTermProcedure)
    assert len(loaded.data) == 2
    assert read_run_status(path)["status"] == "completed"


def test_file_without_trailer_has_no_status(tmp_path):
    path = tmp_path / "killed.csv"
    lines = documented_minimal_example().splitlines()
    path.write_text("\n".join(line for line in lines if not line.startswith("#Run status")) + "\n")
    assert read_run_status(path) is None
    assert len(pd.read_csv(path, comment="#")) == 2
