"""Importing skvae: a safe OpenMP wait policy for torch, unless the user chose one."""

import os
import subprocess
import sys

import pytest

PRINT_POLICY = "import os; {first}import skvae; print(os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize(
    "first, user_value, expected",
    [
        ("", None, "PASSIVE"),  # set before skvae imports torch
        ("", "ACTIVE", "ACTIVE"),  # the user's choice is kept
        ("import torch; ", None, "None"),  # too late to matter: left alone
    ],
)
def test_import_sets_a_passive_omp_wait_policy(first, user_value, expected):
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if user_value is not None:
        env["OMP_WAIT_POLICY"] = user_value
    result = subprocess.run(
        [sys.executable, "-c", PRINT_POLICY.format(first=first)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
