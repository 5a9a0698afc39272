"""The matrix: one test per case (460), parametrised by the plugin."""

from __future__ import annotations

import pytest

from matrix.plugin import failure_message, last_of_configuration, record
from matrix.runner import run_case


def test_case(matrix_case, matrix_env, request):
    case_result = run_case(matrix_case, matrix_env, last_of_configuration(request))
    result = case_result.to_json()
    record(request, result)
    if result["status"] == "skip":
        pytest.skip(result["detail"])
    if result["status"] == "fail":
        pytest.fail(failure_message(result, case_result.note), pytrace=False)
