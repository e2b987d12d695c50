"""Smoke test of ``benchmarks.time_to_quality`` (``--quick``: 512 MNIST rows, 2 epochs)."""

import numpy as np
import pandas as pd
import pytest
from benchmark_runs import run_benchmark

pytestmark = pytest.mark.xdist_group("time_to_quality")


@pytest.fixture(scope="module")
def quick_run(mnist_dir, tmp_path_factory):
    # mnist_dir skips where MNIST is not stored: the benchmark needs it and never downloads it.
    out = tmp_path_factory.mktemp("time_to_quality")
    run_benchmark("time_to_quality", "--quick", "--dims", "2", "--seeds", "0", "1", out=out)
    return pd.read_csv(out / "time_to_quality.csv"), (out / "time_to_quality.md").read_text()


def test_every_fit_is_recorded_with_its_recipe(quick_run):
    table, _ = quick_run
    assert set(table.recipe) == {"old", "new"} and set(table.seed) == {0, 1}
    assert len(table) == 2 * 2 * table.precision.nunique()
    old = table[table.recipe == "old"]
    assert (old.batch_size == 128).all() and np.allclose(old.lr, 1e-3)
    assert (table.train_s > 0).all() and (table.epochs == 2).all()
    assert table["head"].between(0, 1).all() and (table.recon > 0).all()
    # A fit that met the goal did so within its own training time.
    met = table.dropna(subset=["goal_s"])
    assert (met.goal_s <= met.train_s + 1e-9).all() and met.goal_epoch.between(1, 2).all()


def test_markdown_reports_the_goals(quick_run):
    _, text = quick_run
    assert text.startswith("## Time to quality")
    assert "Goals:" in text and "Issue 13, MNIST 2-D head >= 0.93" in text
