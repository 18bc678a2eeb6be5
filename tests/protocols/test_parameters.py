"""Protocol parameters: conversion, bounds and a lossless header form."""

import pytest

from protocols.parameters import (
    CountParameter,
    ExactFloatParameter,
    FloatListParameter,
    ParameterValueError,
)


def test_exact_float_keeps_full_precision():
    parameter = ExactFloatParameter("Width", units="s", default=1.2345678901234e-4)
    text = str(parameter)
    assert text == "0.00012345678901234 s"
    assert parameter.convert(text) == 1.2345678901234e-4


def test_exact_float_rejects_other_unit():
    parameter = ExactFloatParameter("Width", units="s", default=1e-4)
    with pytest.raises(ParameterValueError, match="'ms', expected 's'"):
        parameter.convert("0.1 ms")


def test_exact_float_bound_error_names_parameter():
    parameter = ExactFloatParameter("Width", units="s", minimum=1e-6, maximum=1.0, default=1e-4)
    with pytest.raises(ParameterValueError, match=r"Width: 2\.0 s is above the maximum 1\.0 s"):
        parameter.value = 2.0
    with pytest.raises(ParameterValueError, match="below the minimum"):
        parameter.value = 0.0


@pytest.mark.parametrize("bad", ["abc", float("nan"), float("inf"), True, None])
def test_exact_float_rejects_non_numbers(bad):
    parameter = ExactFloatParameter("Width", units="s", default=1e-4)
    with pytest.raises(ParameterValueError):
        parameter.value = bad


def test_count_accepts_whole_float_and_rejects_fraction():
    parameter = CountParameter("Repeats", minimum=1, maximum=10, default=5)
    parameter.value = 3.0
    assert parameter.value == 3
    with pytest.raises(ParameterValueError, match="expected an integer"):
        parameter.value = 2.5
    with pytest.raises(ParameterValueError, match="above the maximum 10"):
        parameter.value = 11


def test_float_list_round_trip():
    parameter = FloatListParameter("Amplitudes", units="V", default=[2.0, 2.5, 3.0])
    assert parameter.value == (2.0, 2.5, 3.0)
    text = str(parameter)
    assert text == "[2.0,2.5,3.0] V"
    assert parameter.convert(text) == (2.0, 2.5, 3.0)


@pytest.mark.parametrize(
    "text, expected",
    [("2,3", (2.0, 3.0)), ("2.5", (2.5,)), ("[2, 3] V", (2.0, 3.0)), (3, (3.0,))],
)
def test_float_list_accepts_short_forms(text, expected):
    parameter = FloatListParameter("Amplitudes", units="V", default=[2.0])
    parameter.value = text
    assert parameter.value == expected


@pytest.mark.parametrize(
    "bad, message",
    [("[2,3", "expected a list"), ("[]", "empty"), ("[2,x]", "'x' is not a number"),
     ([2.0, 20.0], "above the maximum"), ("loud", "'loud' is not a number"),
     (True, "expected a list")],
)
def test_float_list_rejects(bad, message):
    parameter = FloatListParameter("Amplitudes", units="V", minimum=0.0, maximum=10.0, default=[2.0])
    with pytest.raises(ParameterValueError, match=message):
        parameter.value = bad
