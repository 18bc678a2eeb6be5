"""The results-file format of docs/data-format.md: what other software must write."""

import math
import re
from pathlib import Path

import pandas as pd
from pymeasure.experiment import Results

from protocols.results_file import ResultsWriter, read_run_status
from protocols.set_train import SetProcedure
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


def writer_of(procedure_class, tmp_path):
    procedure = procedure_class()
    procedure.describe_run({}, "0.0.0", 1, "2026-01-01T00:00:00+00:00")
    return ResultsWriter(procedure, tmp_path / "rows.csv")


def test_number_rows_written_as_pymeasure_writes_them(tmp_path):
    writer = writer_of(ShortTermProcedure, tmp_path)
    values = [0.1, 2.5, 1e-05, 3, -0.0012345678901234567, math.nan, 1.5e-08, 12202.2, 0.6, 7e-300]
    cells = dict(zip(writer.columns, values))
    try:
        assert writer._format(cells) == writer.results.format(cells)
    finally:
        writer.close()


def test_text_rows_written_by_pymeasure(tmp_path):
    writer = writer_of(SetProcedure, tmp_path)
    try:
        writer.write_row({"Time (s)": 1.0, "Phase": "before", "Voltage (V)": 0.6})
    finally:
        writer.close()
    frame = pd.read_csv(tmp_path / "rows.csv", comment="#")
    assert frame["Phase"].tolist() == ["before"]
    assert frame["Voltage (V)"].tolist() == [0.6]
    assert math.isnan(frame["Current (A)"].iloc[0])
