"""Reading results files: header, protocol lookup, column units, status and file choice."""

import json

import numpy as np
import pytest

from fitting.errors import FitQualityError, FitWarnings, ResultsFileError
from fitting.results_files import (
    check_time_increases,
    find_campaign_files,
    read_results_file,
    require_columns,
    rows_without_nan,
    split_column_name,
)
from fitting.synthetic import bias_decay_frame, short_term_frame, write_results_file


@pytest.fixture
def short_term(truth, small_plan):
    return short_term_frame(truth, small_plan, np.random.default_rng(0))


def test_split_column_name():
    assert split_column_name("Conductance (S)") == ("Conductance", "S")
    assert split_column_name("Time since pulse (s)") == ("Time since pulse", "s")
    assert split_column_name("Repeat") == ("Repeat", None)


def test_header_sections_and_status(tmp_path, short_term):
    path = write_results_file(tmp_path / "a.csv", short_term, "short-term", bench={"name": "b1"})
    results = read_results_file(path)
    assert results.protocol == "short-term"
    assert results.procedure == "<protocols.short_term.ShortTermProcedure>"
    assert results.sections["Metadata"]["Protocol"] == "short-term"
    assert results.bench_description() == {"name": "b1"}
    assert results.status == "completed"
    assert results.status_source == "trailer"
    assert len(results.data) == len(short_term)
    assert list(results.data.columns) == list(short_term.columns)


def test_protocol_from_procedure_name(tmp_path, short_term):
    frame = short_term.drop(columns=["Pulse energy (J)"])
    path = tmp_path / "x.csv"
    path.write_text(
        "#Procedure: <protocols.bias.BiasDecayProcedure>\n#Parameters:\n#\tSeed: 1\n#Data:\n"
        + frame.to_csv(index=False)
    )
    assert read_results_file(path).protocol == "bias-decay"


def test_protocol_from_columns(tmp_path, truth, small_plan, short_term):
    decay = bias_decay_frame(truth, small_plan, np.random.default_rng(0))
    for frame, expected in ((decay, "bias-decay"), (short_term, "short-term")):
        path = tmp_path / f"{expected}.csv"
        path.write_text("#Procedure: <some.Other>\n#Data:\n" + frame.to_csv(index=False))
        assert read_results_file(path).protocol == expected


def test_unknown_protocol_rejected(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("#Procedure: <some.Other>\n#Data:\nA (s),B\n1,2\n")
    with pytest.raises(ResultsFileError, match="cannot tell which protocol"):
        read_results_file(path)


def test_no_data_rows_rejected(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("#Procedure: <p.ShortTermProcedure>\n#Data:\nTime (s),Conductance (S)\n")
    with pytest.raises(ResultsFileError, match="no data rows"):
        read_results_file(path)


def test_wrong_unit_named(tmp_path, short_term):
    frame = short_term.rename(columns={"Conductance (S)": "Conductance (nS)"})
    results = read_results_file(write_results_file(tmp_path / "a.csv", frame, "short-term"))
    with pytest.raises(ResultsFileError) as caught:
        require_columns(results)
    message = str(caught.value)
    assert "'Conductance (nS)' is in nS" in message
    assert "'Conductance (S)'" in message


def test_missing_column_named(tmp_path, short_term):
    frame = short_term.drop(columns=["Time since pulse (s)"])
    results = read_results_file(write_results_file(tmp_path / "a.csv", frame, "short-term"))
    with pytest.raises(ResultsFileError, match=r"missing column 'Time since pulse \(s\)'"):
        require_columns(results)


def test_non_numeric_value_named(tmp_path, short_term):
    frame = short_term.astype({"Conductance (S)": object})
    frame.loc[3, "Conductance (S)"] = "overload"
    results = read_results_file(write_results_file(tmp_path / "a.csv", frame, "short-term"))
    with pytest.raises(ResultsFileError, match="non-numeric value 'overload' in data row 4"):
        require_columns(results)


def test_nan_rows_flagged_or_dropped(tmp_path, short_term):
    frame = short_term.copy()
    frame.loc[[2, 5], "Conductance (S)"] = np.nan
    results = read_results_file(write_results_file(tmp_path / "a.csv", frame, "short-term"))
    columns = ("Conductance (S)", "Time since pulse (s)")
    with pytest.raises(FitQualityError, match="2 rows hold NaN"):
        rows_without_nan(results, columns, FitWarnings())
    warnings = FitWarnings(continue_on_warning=True)
    remaining_rows = rows_without_nan(results, columns, warnings)
    assert len(remaining_rows) == len(frame) - 2
    assert len(warnings.entries) == 1
    assert "Conductance (S)" in warnings.entries[0]["message"]


def test_backward_time_flagged(tmp_path, short_term):
    frame = short_term.copy()
    frame.loc[10, "Time (s)"] = frame.loc[9, "Time (s)"] - 1.0
    results = read_results_file(write_results_file(tmp_path / "a.csv", frame, "short-term"))
    with pytest.raises(FitQualityError, match="'Time \\(s\\)' decreases"):
        check_time_increases(results, FitWarnings())


def test_status_from_sidecar(tmp_path, short_term):
    path = write_results_file(tmp_path / "a.csv", short_term, "short-term", status=None)
    assert read_results_file(path).status is None
    path.with_suffix(".status.json").write_text(json.dumps({"status": "aborted", "reason": "Ctrl+C"}))
    results = read_results_file(path)
    assert results.status == "aborted"
    assert results.status_reason == "Ctrl+C"


def test_campaign_prefers_completed_run(tmp_path, short_term):
    write_results_file(tmp_path / "run1" / "st.csv", short_term, "short-term", status="aborted")
    write_results_file(tmp_path / "run2" / "st.csv", short_term, "short-term")
    files = find_campaign_files(tmp_path, FitWarnings())
    assert files["short-term"].path == tmp_path / "run2" / "st.csv"


def test_campaign_two_completed_runs_rejected(tmp_path, short_term):
    write_results_file(tmp_path / "a.csv", short_term, "short-term")
    write_results_file(tmp_path / "b.csv", short_term, "short-term")
    with pytest.raises(ResultsFileError, match="found 2 completed short-term results files") as caught:
        find_campaign_files(tmp_path, FitWarnings())
    message = str(caught.value)
    assert "(a.csv, b.csv)" in message
    assert "move all but one of them out of RESULTS_DIR" in message


def test_campaign_no_completed_run_rejected(tmp_path, short_term):
    write_results_file(tmp_path / "a.csv", short_term, "short-term", status="aborted")
    write_results_file(tmp_path / "run2" / "b.csv", short_term, "short-term", status=None)
    with pytest.raises(ResultsFileError, match="found 2 short-term results files") as caught:
        find_campaign_files(tmp_path, FitWarnings())
    message = str(caught.value)
    assert "none of them completed" in message
    assert "a.csv: aborted" in message
    assert "run2/b.csv: no status" in message


def test_campaign_aborted_run_flagged(tmp_path, short_term):
    write_results_file(tmp_path / "a.csv", short_term, "short-term", status="aborted")
    with pytest.raises(FitQualityError, match="status 'aborted'"):
        find_campaign_files(tmp_path, FitWarnings())


def test_campaign_without_status_flagged(tmp_path, short_term):
    write_results_file(tmp_path / "a.csv", short_term, "short-term", status=None)
    with pytest.raises(FitQualityError, match="records no run status"):
        find_campaign_files(tmp_path, FitWarnings())
    warnings = FitWarnings(continue_on_warning=True)
    assert find_campaign_files(tmp_path, warnings)["short-term"].status is None
    assert len(warnings.entries) == 1


def test_campaign_directory_errors(tmp_path):
    with pytest.raises(ResultsFileError, match="does not exist"):
        find_campaign_files(tmp_path / "missing", FitWarnings())
    with pytest.raises(ResultsFileError, match="no results files"):
        find_campaign_files(tmp_path, FitWarnings())
