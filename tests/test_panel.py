"""Smoke test of the defaults panel: ``python -m benchmarks.panel --quick``."""

import numpy as np
import pytest
from benchmark_runs import run_benchmark

from skvae import DisentangledVAE
from skvae.estimator import auto_max_epochs

pd = pytest.importorskip("pandas")

# One xdist worker runs the whole module (make test uses --dist loadgroup), so
# the module-scoped quick run happens once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("panel")

# --quick: iris 5-fold and digits, 2-D, seed 0, plus supervised UMAP when
# umap-learn is installed; about a minute of CPU.

COLUMNS = [
    "data", "dims", "seed", "n_train", "max_epochs_", "fit_s", "head_acc", "knn5_acc", "silhouette",
    "recon_ratio", "recon_mse", "plain_recon_mse", "lda_acc", "logreg_acc", "raw_knn5_acc", "umap_knn5_acc",
    "umap_silhouette", "umap_fit_s",
]


@pytest.fixture(scope="module")
def quick_panel(tmp_path_factory):
    out = tmp_path_factory.mktemp("panel")
    run_benchmark("panel", "--quick", out=out)
    return out


def test_panel_rows_and_columns(quick_panel):
    table = pd.read_csv(quick_panel / "panel.csv")
    assert list(table.columns) == COLUMNS
    assert list(table.data) == ["iris", "digits"]
    assert (table.dims == 2).all() and (table.seed == 0).all()
    # iris: first of 5 folds (120 rows); digits: the 80/20 split (1,437 rows).
    assert list(table.n_train) == [120, 1437]


def test_panel_values_are_sane(quick_panel):
    table = pd.read_csv(quick_panel / "panel.csv")
    for column in ["head_acc", "knn5_acc", "lda_acc", "logreg_acc", "raw_knn5_acc"]:
        assert table[column].between(0.3, 1, inclusive="right").all(), column
    umap_acc = table.umap_knn5_acc.dropna()
    assert umap_acc.between(0.3, 1, inclusive="right").all()
    assert table.silhouette.between(-1, 1).all()
    assert (table.fit_s > 0).all()
    assert (table.recon_mse > 0).all() and (table.plain_recon_mse > 0).all()
    assert np.allclose(table.recon_ratio, table.recon_mse / table.plain_recon_mse)
    # iris' 3 classes have fixed centres in 2-D, digits' 10 do not.
    expected = [
        auto_max_epochs(n, DisentangledVAE().batch_size, arranges_classes=data == "digits")
        for n, data in zip(table.n_train, table.data)
    ]
    assert list(table.max_epochs_) == list(expected)


def test_panel_summary_and_goals(quick_panel):
    summary = pd.read_csv(quick_panel / "panel_summary.csv")
    assert list(summary.data) == ["iris", "digits"]
    goals = pd.read_csv(quick_panel / "panel_goals.csv")
    assert list(goals.goal) == ["head >= LogReg (5-fold) - 0.02", "head >= 0.95"]
    assert goals.met.dtype == bool
