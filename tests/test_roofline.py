"""Smoke tests of ``benchmarks.roofline`` and ``benchmarks.grid_search_throughput`` (``--quick``)."""

import joblib
import numpy as np
import pandas as pd
import pytest
from benchmark_runs import run_benchmark

# One xdist worker runs the whole module (make test uses --dist loadgroup):
# the two quick runs are timing benchmarks and should not share the CPUs with
# each other.
pytestmark = pytest.mark.xdist_group("roofline")

# --quick takes 15-35 s each on 2 cores (the longer under load).


@pytest.fixture(scope="module")
def roofline(tmp_path_factory):
    out = tmp_path_factory.mktemp("roofline")
    stdout = run_benchmark("roofline", "--quick", out=out)
    return pd.read_csv(out / "roofline.csv"), (out / "roofline.md").read_text(), stdout


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    stdout = run_benchmark("grid_search_throughput", "--quick", out=out)
    return pd.read_csv(out / "grid_search.csv"), (out / "grid_search.md").read_text(), stdout


def test_roofline_table_columns_and_values(roofline):
    table, _, _ = roofline
    assert list(table.columns) == [
        "benchmark", "architecture", "setting", "precision", "value", "unit", "target", "met",
    ]
    assert {"gemm", "flops", "training", "transform", "inverse_transform", "goal", "precision effect"} == set(
        table.benchmark
    )
    assert np.isfinite(table.value).all()
    # Rates, counts and times of work that was done: positive, however loaded the machine.
    positive = table.unit.isin(["GFLOP/s", "FLOP/row", "samples/s", "rows/s", "x", "fraction"])
    assert (table.value[positive] > 0).all(), table[positive & (table.value <= 0)]
    for arch in ("mlp", "conv"):
        for precision in ("32", "bf16-mixed"):
            assert ((table.benchmark == "gemm") & (table.precision == precision)).sum() == 3 * 5
            for what in ("training", "transform", "inverse_transform"):
                rows = table[(table.benchmark == what) & (table.architecture == arch) & (table.precision == precision)]
                assert len(rows) == (6 if what == "training" else 5), (arch, precision, what)


def test_flop_counts_match_the_layer_shapes(roofline):
    table, _, stdout = roofline
    flops = table[table.benchmark == "flops"].set_index(["architecture", "setting"]).value
    # Default MLP 784-512-256-2 (mean and log-variance heads), head 2-10-10-10.
    encoder = 2 * (784 * 512 + 512 * 256 + 2 * 256 * 2)
    decoder = 2 * (2 * 256 + 256 * 512 + 512 * 784)
    head = 2 * (2 * 10 + 10 * 10 + 10 * 10)
    assert flops["mlp", "transform"] == encoder
    assert flops["mlp", "inverse_transform"] == decoder
    assert flops["mlp", "train"] == 3 * (encoder + decoder + head)
    # Conv: 1->8 (14x14), 8->16 (7x7), each 3x3, then dense 784-512-256 and
    # the heads; the MLP decoder.
    conv_encoder = 2 * (8 * 14 * 14 * 9 + 16 * 7 * 7 * 8 * 9 + 784 * 512 + 512 * 256 + 2 * 256 * 2)
    assert flops["conv", "transform"] == conv_encoder
    assert flops["conv", "inverse_transform"] == decoder
    per_layer = flops[[name for name in flops.index if ":" in name[1]]]
    assert per_layer.groupby(level=0).sum()["mlp"] * 3 == flops["mlp", "train"]
    assert "Linear 784->512" in stdout and "Conv2d" in stdout


def test_roofline_ratios_are_consistent_and_plausible(roofline):
    table, _, _ = roofline
    value = table.set_index(["benchmark", "architecture", "setting", "precision"]).value
    goals = table[table.benchmark == "goal"]
    assert len(goals) == 2 * (2 * 3 + 3)
    assert set(goals.met) <= {"met", "missed"}
    assert ((goals.value >= goals.target) == (goals.met == "met")).all()
    for arch in ("mlp", "conv"):
        for precision in ("32", "bf16-mixed"):
            ratio = value["goal", arch, "training skvae / hand loop", precision]
            # The same work both ways: a band wide enough for any load.
            assert 0.02 < ratio < 50, (arch, precision, ratio)
            for what in ("transform", "inverse_transform"):
                assert 0.02 < value["goal", arch, f"{what} skvae / bare loop", precision] < 50
            # A share of the GEMM rate: quick runs time the GEMM too briefly
            # for an upper bound of 1, but not by 10x.
            for what in ("training", "transform", "inverse_transform"):
                assert 0 < value[what, arch, "skvae share of GEMM rate", precision] < 10
        for what in ("transform", "inverse_transform", "training"):
            assert 0.01 < value["goal", arch, f"{what} skvae bf16 / fp32", "-"] < 100
        effect = table[(table.benchmark == "precision effect") & (table.architecture == arch)]
        effect = effect.set_index("setting").value
        # Same weights: bfloat16 keeps ~3 significant digits of the latent means.
        assert 0 <= effect["max latent |bf16 - fp32|"] < 0.5 * max(effect["latent std (fp32)"], 1)
        assert effect["epochs of the compared models"] == 1
        for name in ("head accuracy fp32", "head accuracy bf16", "head accuracy of the bf16-trained model"):
            assert 0 <= effect[name] <= 1
        assert effect["head accuracy change bf16 - fp32"] == pytest.approx(
            effect["head accuracy bf16"] - effect["head accuracy fp32"]
        )


def test_roofline_markdown_section(roofline):
    table, text, stdout = roofline
    assert text.startswith("## Roofline\n")
    assert "python -m benchmarks.roofline --quick" in text and "load average" in text
    for row in table[table.benchmark == "goal"].itertuples():
        assert f"| {row.architecture} | {row.setting} | {row.precision} | {row.value:.2f}x |" in text
    assert text in stdout


def test_grid_search_table(grid):
    table, text, stdout = grid
    assert list(table.columns) == [
        "n_jobs", "backend", "threads_per_fit", "runs", "wall_s", "wall_s_min", "wall_s_max", "fits",
        "fits_per_minute", "speedup_vs_sequential", "torch_threads_found", "openmp_threads_found",
        "torch_threads_in_fit", "worker_processes",
    ]
    assert len(table) == 8
    assert set(zip(table.n_jobs, table.backend, table.threads_per_fit)) == {
        (n, b, t) for n in (1, 2) for b in ("loky", "threading") for t in (1, 2)
    }
    numbers = table[["wall_s", "wall_s_min", "wall_s_max", "fits_per_minute", "speedup_vs_sequential"]]
    assert np.isfinite(numbers).all().all() and (numbers > 0).all().all()
    assert (table.wall_s_min <= table.wall_s).all() and (table.wall_s <= table.wall_s_max).all()
    # 2 candidates x cv=2 + the refit in the quick run.
    assert (table.fits == 5).all()
    assert table.fits_per_minute.to_numpy() == pytest.approx(table.fits / table.wall_s * 60)
    assert 0.02 < table.speedup_vs_sequential.min() and table.speedup_vs_sequential.max() < 50
    # Each fit runs with the threads the combination asks for.
    assert (table.torch_threads_in_fit.astype(str) == table.threads_per_fit.astype(str)).all()
    loky = table[(table.backend == "loky") & (table.n_jobs == 2)]
    # joblib limits each of 2 loky workers to cpu_count // 2 threads.
    assert loky.worker_processes.between(1, 2).all()
    expected = str(max(joblib.cpu_count() // 2, 1))
    assert (loky.torch_threads_found.astype(str) == expected).all()
    assert (table[table.backend == "threading"].worker_processes == 0).all()
    assert text.startswith("## Grid search throughput\n") and "Fastest: n_jobs=" in text
    assert text in stdout
