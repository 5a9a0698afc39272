"""The matrix: one test per case of the run's profile, parametrised by the plugin."""

from __future__ import annotations

import pytest

from matrix import state
from matrix.plugin import failure_message, following_case, last_of_configuration, record
from matrix.runner import run_case


def test_case(matrix_case, matrix_env, request):
    if isinstance(matrix_case, state.StateCase):  # --profile state (docs/state.md)
        case_result = state.run_case(matrix_case, matrix_env)
    else:
        last, following = last_of_configuration(request), following_case(request)
        case_result = run_case(matrix_case, matrix_env, last, following)
    result = case_result.to_json()
    record(request, result)
    if result["status"] == "skip":
        pytest.skip(result["detail"])
    if result["status"] == "fail":
        pytest.fail(failure_message(result, case_result.note), pytrace=False)
