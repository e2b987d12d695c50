"""Smoke tests of the benchmarks (each ``--quick``): ``run_all``, ``borders``, ``front``, ``semi_supervised``,
``regret``, ``training_length``, ``wait_policy``, ``noise_selection``, ``out_of_core``, ``compiled_step``,
``propagation_scale``, ``versus_umap``, ``noise_check``, ``pilot_length``, ``data_parallel`` and ``commit_speed``."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from benchmark_runs import REPO, run_benchmark

from skvae._validation import no_noise_wins

# One xdist worker runs the whole module (make test uses --dist loadgroup), so
# the module-scoped quick run happens once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("benchmarks")

# --quick takes about 20 s on 2 idle cores.


def run_all(*args, out):
    return run_benchmark("run_all", *args, out=out)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, run_all("--quick", out=out)


def test_quality_table_has_expected_rows_and_columns(quick_run):
    out, _ = quick_run
    table = pd.read_csv(out / "quality.csv")
    assert list(table.columns) == [
        "dataset", "dims", "method", "seed", "epochs", "head_acc", "head_drop", "knn5_acc", "silhouette",
        "recon_mse", "generation_acc", "border_share", "fit_s",
    ]
    vae_rows = table.method.isin(["plain VAE (fit(X))", "original recipe", "skvae defaults"])
    assert (table.epochs[vae_rows] == 2).all() and table.epochs[~vae_rows].isna().all()
    assert set(table.method) >= {"PCA", "LDA", "plain VAE (fit(X))", "original recipe", "skvae defaults"}
    assert set(table.dataset) == {"digits"} and set(table.dims) == {2}
    ours = table[table.method == "skvae defaults"].iloc[0]
    for column in ["head_acc", "knn5_acc", "silhouette", "recon_mse", "generation_acc", "border_share"]:
        assert pd.notna(ours[column]), column
    assert 0 <= ours.head_acc <= 1 and -1 <= ours.silhouette <= 1


def test_update_replaces_only_the_rows_rerun(quick_run, tmp_path):
    out, _ = quick_run
    before = pd.read_csv(out / "quality.csv")
    (tmp_path / "quality.csv").write_text((out / "quality.csv").read_text())
    run_all("--only", "quality", "--datasets", "digits", "--dims", "2", "--methods", "PCA", "--umap-dims",
            "--update", out=tmp_path)
    after = pd.read_csv(tmp_path / "quality.csv")
    assert sorted(after.method) == sorted(before.method)
    key = ["dataset", "dims", "method", "seed"]
    kept = before[before.method != "PCA"].set_index(key).sort_index()
    pd.testing.assert_frame_equal(after[after.method != "PCA"].set_index(key).sort_index(), kept)


def test_goal_checks_are_reported(quick_run):
    out, _ = quick_run
    goals = pd.read_csv(out / "goals.csv")
    assert list(goals.columns) == ["dataset", "dims", "goal", "met", "worst"]
    assert len(goals) == 6


def test_ablation_table_has_every_recipe(quick_run):
    out, _ = quick_run
    table = pd.read_csv(out / "ablation_digits_2d.csv")
    assert table.recipe.iloc[0] == "original recipe"
    # 7 steps to and from the defaults, plus anchoring in 2-D.
    assert len(table) == 8
    assert table.recipe.iloc[-1] == "defaults + anchoring (class_spacing=6)"
    assert {"head acc", "silhouette", "recon MSE", "-ELBO/sample", "generation acc",
            "border share"} <= set(table.columns)
    assert table[["head acc", "recon MSE", "-ELBO/sample"]].notna().all().all()


def test_speed_table_and_report(quick_run):
    out, stdout = quick_run
    speed = pd.read_csv(out / "speed.csv")
    assert list(speed.columns) == ["benchmark", "setting", "value", "unit"]
    assert {"training throughput", "transform", "inverse_transform", "transform peak memory",
            "fit time per epoch"} <= set(speed.benchmark)
    assert np.isfinite(speed.value).all()
    # Rates and times of work that was done: positive, however loaded the machine.
    rates = speed[speed.unit.isin(["samples/s", "rows/s"])]
    assert len(rates) == 6 and (rates.value > 0).all()
    fit = speed[speed.benchmark == "fit time per epoch"]
    assert len(fit) == 1 and (fit.unit == "s").all() and (fit.value > 0).all()
    value = speed.set_index(["benchmark", "setting"]).value
    for arch in ("mlp", "conv"):
        throughput = value["training throughput"]
        ratio = throughput[f"{arch} ratio skvae/hand"]
        assert ratio == pytest.approx(throughput[f"{arch} skvae"] / throughput[f"{arch} hand loop"], rel=1e-9)
        # The same training both ways: a band wide enough for any load.
        assert 0.02 < ratio < 50, (arch, ratio)
    memory = value["transform peak memory"]
    input_mib = memory["5,000 rows (input itself)"]
    assert input_mib == pytest.approx(5_000 * 784 * 4 / 2**20)  # float32 rows of 784 pixels
    # transform makes no NumPy copy of its input (tracemalloc sees NumPy's
    # allocations, not torch's).
    assert 0 <= memory["5,000 rows (tracemalloc)"] < input_mib
    assert memory["5,000 rows (max RSS growth)"] >= 0
    report = (out / "report.md").read_text()
    for section in ("## Quality", "## Goals", "## Ablation", "## Speed", "torch"):
        assert section in report
    # The report's speed table and the printed one show every value.
    speed_section = report.split("## Speed", 1)[1]
    for number in speed.value:
        assert f"{number:,.2f}" in speed_section, number
        assert f"{number:,.2f}" in stdout, number


def test_borders_benchmark_judges_the_requested_pair(tmp_path):
    out = run_benchmark("borders", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "borders.csv")
    assert list(table.request) == ["none", "0-8"]
    # Both models are judged on the pair: the judge's label at each of the
    # 21 points of the path from 0 to 8.
    for met, path in zip(table.met, table["path_0-8"]):
        path = path.split()
        assert len(path) == 21 and set(path) <= set("0123456789")
        assert met == float(set(path) <= {"0", "8"})
    assert table.border_share.between(0, 1).all() and table.head_acc.between(0, 1).all()
    assert "border_share" in out


def test_front_benchmark_marks_the_front_and_checks_goals(tmp_path):
    out = run_benchmark("front", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "front.csv")
    assert list(table.method) == ["plain VAE", "skvae", "skvae", "original recipe"]
    assert table.recon_ratio.iloc[0] == 1.0
    assert np.allclose(table.recon_ratio, table.recon_mse / table.recon_mse.iloc[0])
    # Only skvae rows can be on the front, and at least one of them is.
    assert not table[table.method != "skvae"].on_front.any() and table.on_front.any()
    goals = pd.read_csv(tmp_path / "front_goals.csv")
    assert list(goals.goal) == ["front dominates original recipe", "default on the front, recon <= 1.05x plain"]
    assert (tmp_path / "front.png").stat().st_size > 10_000
    assert "front dominates" in out
    # --summarize rebuilds the same table from front.csv alone.
    (tmp_path / "front.png").unlink()
    run_benchmark("front", "--summarize", out=tmp_path)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "front.csv"), table)
    assert (tmp_path / "front.png").is_file()


def test_semi_supervised_quick_run_reports_every_method_and_goal(tmp_path):
    out = tmp_path / "semi_supervised.jsonl"
    stdout = run_benchmark("semi_supervised", "--quick", "--datasets", "digits", out=out)

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {row["method"] for row in rows} == {
        "skvae", "plain VAE + LogReg", "LabelSpreading", "SelfTraining(SVC)", "LogReg (labeled pixels)"
    }
    assert {(row["fraction"], row["dim"]) for row in rows if row["method"] == "skvae"} == {
        (fraction, dim) for fraction in (0.01, 0.1, 1.0) for dim in (2, 8)
    }
    for goal in ("8-D head >= LabelSpreading", "2-D head >= plain VAE + LogReg", "2-D head >= LabelSpreading",
                 "recon within 5% of the 100% model's"):
        assert goal in stdout


def test_noise_choice_quick_tables(tmp_path):
    stdout = run_benchmark("noise_choice", "--quick", out=tmp_path)
    curves = pd.read_csv(tmp_path / "noise_curves.csv")
    assert list(curves.noise) == [0.0, 0.1, 0.2, 0.3]
    assert curves.filter(like="valid at").notna().all().all() and curves["final test"].between(0, 1).all()
    assert "final test" in stdout


# regret --quick: 2 sets x 8 fits of 2-4 epochs, about 10 s; --sets imbalanced: about 3 s.


def test_regret_quick_run_fits_the_grid_and_reports_the_regret(tmp_path):
    # Two jobs: the sets are measured in worker processes, as in a real run.
    stdout = run_benchmark("regret", "--quick", "--jobs", "2", out=tmp_path)
    table = pd.read_csv(tmp_path / "regret.csv")
    assert list(table.data.unique()) == ["waveforms", "imbalanced"]
    assert (table.dims == 2).all() and (table.seed == 0).all()
    for name, fits in table.groupby("data"):
        # 4 dropouts x 2 lengths, the default standing for its own cell.
        assert len(fits) == 8 and fits.is_default.sum() == 1
        assert set(zip(fits.input_dropout, fits.epochs)) == {(p, n) for p in (0, 0.1, 0.2, 0.3) for n in ("1x", "2x")}
        default = fits[fits.is_default].iloc[0]
        assert default.epochs == "1x" and default.max_epochs == 2  # --quick: 2 epochs instead of "auto"
        assert (fits.max_epochs[fits.epochs == "2x"] == 4).all() and (fits.max_epochs[fits.epochs == "1x"] == 2).all()
        # The latent 5-NN is measured on the default only.
        assert fits.knn5_acc.notna().sum() == 1 and pd.notna(default.knn5_acc)
        assert fits[["head_acc", "head_balanced_acc"]].stack().between(0, 1).all() and (fits.fit_s > 0).all()
    # waveforms' 64 features get input_dropout 0.2 from "auto", imbalanced's 16 get 0.1.
    assert dict(zip(table.data[table.is_default], table.input_dropout[table.is_default])) == {
        "waveforms": 0.2, "imbalanced": 0.1}

    summary = pd.read_csv(tmp_path / "regret_summary.csv")
    assert list(zip(summary.data, summary.score)) == [
        ("waveforms", "accuracy"), ("imbalanced", "accuracy"), ("imbalanced", "balanced accuracy")]
    np.testing.assert_allclose(summary.regret_pts, 100 * (summary.best_head - summary.default_head))
    np.testing.assert_allclose(summary.head_minus_knn5_pts, 100 * (summary.default_head - summary.knn5))
    assert (summary.regret_pts >= 0).all()  # the default's own cell is in the grid
    grid = pd.read_csv(tmp_path / "regret_grid.csv")
    assert grid.shape == (2, 2 + 8)
    report = (tmp_path / "regret.md").read_text()
    assert "`python -m benchmarks.regret --quick --jobs 2`" in report and "regret_pts" in stdout


def test_regret_defaults_only_update_refits_the_defaults_and_keeps_the_grid(tmp_path):
    run_benchmark("regret", "--quick", "--sets", "imbalanced", out=tmp_path)
    before = pd.read_csv(tmp_path / "regret.csv")
    stdout = run_benchmark("regret", "--quick", "--sets", "imbalanced", "--defaults-only", "--update", out=tmp_path)
    after = pd.read_csv(tmp_path / "regret.csv")
    cells = ["input_dropout", "epochs", "is_default", "head_acc"]
    # The same seed refits the same default, which still stands for its own cell.
    pd.testing.assert_frame_equal(after[cells], before[cells])
    assert (after.fit_s[after.is_default] != before.fit_s[before.is_default]).all()  # it was fitted again
    assert "2 fits in" not in stdout and "1 fits in" in stdout


def test_regret_merge_keeps_a_former_default_as_its_cell():
    from benchmarks.regret import COLUMNS, merge

    def rows(*cells):
        return pd.DataFrame([dict(data="digits", dims=2, seed=0, input_dropout=p, epochs=e, is_default=d, head_acc=h)
                             for p, e, d, h in cells]).reindex(columns=COLUMNS)

    old = rows((0.2, "1x", True, 0.90), (0.2, "2x", False, 0.95), (0.0, "1x", False, 0.80))
    # A default trained 1.5 times the base length is a cell of no grid: the former default stays as p=0.2, 1x.
    merged = merge(old, rows((0.2, "1.5x", True, 0.93)), defaults_only=True)
    assert sorted(zip(merged.epochs, merged.input_dropout, merged.is_default, merged.head_acc)) == [
        ("1.5x", 0.2, True, 0.93), ("1x", 0.0, False, 0.80), ("1x", 0.2, False, 0.90), ("2x", 0.2, False, 0.95)]
    # A default that resolves to a cell replaces that cell's row.
    merged = merge(old, rows((0.0, "1x", True, 0.85)), defaults_only=True)
    assert sorted(zip(merged.epochs, merged.input_dropout, merged.is_default, merged.head_acc)) == [
        ("1x", 0.0, True, 0.85), ("1x", 0.2, False, 0.90), ("2x", 0.2, False, 0.95)]
    # A run of the whole grid replaces every row of its data, dims and seed.
    merged = merge(old, rows((0.1, "1x", True, 0.91)), defaults_only=False)
    assert list(merged.head_acc) == [0.91]


def test_regret_skips_mnist_sets_where_mnist_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "no_mnist"))
    stdout = run_benchmark("regret", "--quick", "--sets", "mnist14", "waveforms", out=tmp_path)
    assert "mnist14: skipped" in stdout
    assert list(pd.read_csv(tmp_path / "regret.csv").data.unique()) == ["waveforms"]


def test_architecture_quick_run_pairs_the_conv_default_with_the_mlp(tmp_path, monkeypatch):
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "no_mnist"))
    stdout = run_benchmark("architecture", "--quick", "--sets", "mnist14", "glyphs16", out=tmp_path)
    assert "mnist14: skipped" in stdout
    table = pd.read_csv(tmp_path / "architecture.csv")
    # 16x16 glyphs: "auto" picks the conv encoder.
    assert list(zip(table.architecture, table.is_auto)) == [("conv", True), ("mlp", False)]
    assert (table.data == "glyphs16").all() and (table.max_epochs == 2).all() and (table.fit_s > 0).all()
    assert table[["head_acc", "knn5_acc"]].stack().between(0, 1).all()
    conv, mlp = table.iloc[0], table.iloc[1]
    summary = (tmp_path / "architecture.md").read_text()
    assert "`python -m benchmarks.architecture --quick --sets mnist14 glyphs16`" in summary
    assert f"{100 * (conv.head_acc - mlp.head_acc):.3f}" in summary
    assert f"{conv.fit_s / mlp.fit_s:.3f}" in summary
    # --update replaces the rows of what it reruns and keeps the others.
    table.assign(data="mnist", fit_s=1.0).to_csv(tmp_path / "old.csv", index=False)
    both = pd.concat([pd.read_csv(tmp_path / "old.csv"), table])
    both.to_csv(tmp_path / "architecture.csv", index=False)
    run_benchmark("architecture", "--quick", "--update", out=tmp_path)
    updated = pd.read_csv(tmp_path / "architecture.csv")
    assert list(updated.data) == ["glyphs16", "glyphs16", "mnist", "mnist"]
    assert (updated.fit_s[updated.data == "mnist"] == 1.0).all()
    assert "merged into 4 rows" in (tmp_path / "architecture.md").read_text()


def test_training_length_quick_run_compares_the_two_lengths(tmp_path):
    stdout = run_benchmark("training_length", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "training_length.csv")
    assert list(table.length) == ["1x", "default"] and list(table.max_epochs) == [2, 3]
    assert table[["head_acc", "head_balanced_acc"]].stack().between(0, 1).all()
    summary = pd.read_csv(tmp_path / "training_length_summary.csv")
    np.testing.assert_allclose(summary.gain_pts, 100 * (summary.head_default - summary.head_1x))
    assert "gain_pts" in stdout


def test_wait_policy_quick_run_times_each_policy_alone_and_loaded(tmp_path):
    stdout = run_benchmark("wait_policy", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "wait_policy.csv")
    assert list(zip(table.policy, table.loaded)) == [
        ("PASSIVE", False), ("libgomp default", False), ("PASSIVE", True), ("libgomp default", True)]
    assert (table.fit_s > 0).all() and "slowdown" in stdout


def test_noise_selection_quick_replays_every_rule_against_the_default(tmp_path):
    stdout = run_benchmark("noise_selection", "--quick", out=tmp_path)
    records = [json.loads(line) for line in (tmp_path / "noise_selection.jsonl").read_text().splitlines()]
    assert sorted(str(r["noise"]) for r in records) == ["0.0", "0.15", "0.3", "default"]
    assert all(len(r["test"]) == 4 for r in records)  # one test score per epoch
    assert all(len(r["valid"]) == 4 for r in records if r["noise"] != "default")
    rules = pd.read_csv(tmp_path / "noise_selection_rules.csv")
    assert len(rules) == 1 and rules.filter(like="best at").notna().all().all()
    assert "vs default (pts)" in stdout
    # Started again, it finds every fit done and trains nothing.
    run_benchmark("noise_selection", "--quick", out=tmp_path)
    assert len((tmp_path / "noise_selection.jsonl").read_text().splitlines()) == 4


def test_out_of_core_quick_run_measures_memory_and_throughput_both_ways(tmp_path):
    stdout = run_benchmark("out_of_core", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "out_of_core.csv")
    assert list(table.input) == ["memmap uint8 + ScaledArray", "in memory (float32)"] and set(table.n) == {3000}
    assert (table[["fit_s", "transform_s", "peak_rss_anon_mb"]] > 0).all().all()
    assert table.fit_vs_in_memory.iloc[0] == pytest.approx(table.fit_samples_s[0] / table.fit_samples_s[1])
    assert np.load(tmp_path / "out_of_core_data" / "images.npy", mmap_mode="r").dtype == np.uint8
    assert "fit_vs_in_memory" in stdout
    assert len(pd.read_csv(tmp_path / "out_of_core_runs.csv")) == 2
    assert (tmp_path / "out_of_core.png").stat().st_size > 0


def test_data_parallel_quick_run_compares_one_process_with_two(tmp_path):
    stdout = run_benchmark("data_parallel", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "data_parallel.csv")
    assert list(table.run) == ["1 process", "1 process, 1 thread", "DDP, 1 process", "DDP, 2 processes"]
    assert list(table.processes) == [1, 1, 1, 2] and list(table.threads_each) == [2, 1, 2, 1]
    assert (table[["fit_s", "samples_s", "best_fit_s", "best_samples_s"]] > 0).all().all()
    # The same model at the same global batch, up to float rounding.
    assert table.max_latent_diff.iloc[0] == 0 and (table.max_latent_diff < 1e-4).all()
    assert table.head_acc.nunique() == 1
    assert "load average" in stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data_parallel.csv", "data_parallel_runs.csv"]


def test_compiled_step_quick_run_reports_the_ladder_compile_time_and_break_even(tmp_path):
    stdout = run_benchmark("compiled_step", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "compiled_step.csv")
    steady = table[table.benchmark == "steady state"]
    assert list(steady.setting) == [
        "hand loop, eager, Adam(foreach)", "hand loop, eager, Adam(fused)", "hand loop, compiled + Adam(fused)",
        "skvae fit, compile=False", "skvae fit, compile=True"]
    assert (steady.value > 0).all() and (steady.unit == "samples/s").all()
    assert list(table.setting[table.benchmark == "compile time"]) == ["fresh process, cache warm"]
    assert len(table[table.benchmark == "break-even"]) == 1 and table.load.notna().all()
    assert "load average" in (tmp_path / "compiled_step.md").read_text() and "samples/s" in stdout


def test_propagation_scale_quick_run_measures_memory_and_time_both_ways(tmp_path):
    stdout = run_benchmark("propagation_scale", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "propagation_scale.csv")
    assert list(table.input) == ["in memory (float32)", "memmap (float32)"] and set(table.n) == {3000}
    assert (table[["seconds", "peak_rss_anon_mb", "rise_mb"]] > 0).all().all()
    assert list(table.searched) == ["exact", "exact"]  # "auto" below 200,000 rows
    assert table.projected_1m_s.tolist() == pytest.approx((table.seconds * (1e6 / 3000) ** 2).tolist())
    # Both inputs give the same labels, better than chance (0.1) from 30 labels.
    assert table.hidden_accuracy.nunique() == 1 and table.hidden_accuracy.iloc[0] > 0.2
    assert np.load(tmp_path / "propagation_data" / "blobs.npy", mmap_mode="r").shape == (3000, 40)
    assert "projected_1m_s" in stdout
    run_benchmark("propagation_scale", "--quick", "--inputs", "memory", "--search", "random", out=tmp_path)
    graph_only = pd.read_csv(tmp_path / "propagation_scale.csv")
    assert list(graph_only.search) == ["random"] and graph_only.projected_1m_s.isna().all()
    # The approximate search, forced at 3,000 rows: an exact run's time does not project it.
    run_benchmark("propagation_scale", "--quick", "--inputs", "memory", "--search", "cells", out=tmp_path)
    cells = pd.read_csv(tmp_path / "propagation_scale.csv")
    assert list(cells.searched) == ["cells"] and cells.projected_1m_s.isna().all()
    assert cells.hidden_accuracy.iloc[0] > 0.2
    # Recall: 2 of the 54 cells miss neighbours; all 54 (100 asked) are the exact search.
    run_benchmark("propagation_scale", "--quick", "--recall", "2", "100", out=tmp_path)
    recall = pd.read_csv(tmp_path / "propagation_recall.csv")
    assert list(recall.search) == ["exact", "cells", "cells"] and list(recall.probed_cells.fillna(0)) == [0, 2, 100]
    assert 0.2 < recall.recall[1] < 1 and recall.distance_ratio[1] > 1
    assert recall.recall[2] == 1 and recall.distance_ratio[2] == pytest.approx(1)
    # The search before blocks finds the same labels.
    run_benchmark("propagation_scale", "--quick", "--inputs", "memory", "--search", "sklearn", out=tmp_path)
    assert pd.read_csv(tmp_path / "propagation_scale.csv").hidden_accuracy[0] == table.hidden_accuracy[0]


# versus_umap --quick: digits, 2 epochs, the eager ladder; about 25 s on 2 busy cores
# (more with umap-learn installed, whose first fit compiles).
def test_versus_umap_quick_run_puts_skvae_beside_umap_and_its_step_beside_the_hand_loops(tmp_path):
    stdout = run_benchmark("versus_umap", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "versus_umap.csv")
    with_umap = importlib.util.find_spec("umap") is not None
    methods = ["skvae fp32", "skvae bf16-mixed", "supervised UMAP"]
    assert set(table.dataset) == {"digits"} and list(table.method) == [
        m for m in methods if m in set(table.method)]
    assert "skvae fp32" in set(table.method) and ("supervised UMAP" in set(table.method)) == with_umap
    assert (table[["first_fit_s", "warm_fit_s", "transform_rows_s"]] > 0).all().all()
    assert (table.n_train == 1437).all() and (table.n_test == 360).all()
    skvae = table[table.method != "supervised UMAP"]
    assert (skvae.epochs == 2).all() and skvae.head_acc.between(0, 1).all()
    assert table.knn5_acc.between(0, 1).all() and table.silhouette.between(-1, 1).all()
    # UMAP has no head; every ratio is to UMAP's figure, empty without it.
    assert table.head_acc[table.method == "supervised UMAP"].isna().all()
    ratios = table[["first_fit_vs_umap", "warm_fit_vs_umap", "transform_rows_vs_umap"]]
    assert (ratios.notna().all().all() if with_umap else ratios.isna().all().all())
    ladder = pd.read_csv(tmp_path / "versus_umap_ladder.csv")
    bf16 = "skvae bf16-mixed" in set(table.method)
    expected = ["hand loop, eager, Adam(foreach)", "hand loop, eager, Adam(fused)"]
    expected += ["hand loop, eager, Adam(fused), bf16 autocast"] * bf16 + ["skvae fit, compile=False"]
    expected += ["skvae fit, bf16-mixed, compile=False"] * bf16 + ["GEMM 4096x784 @ 784x512, fp32"]
    expected += ["GEMM 4096x784 @ 784x512, bf16"] * bf16
    assert list(ladder.contender) == expected  # --quick compiles nothing
    steps = ladder[ladder.samples_s.notna()]
    assert len(steps) == len(expected) - 1 - bf16 and steps.vs_eager_fp32.iloc[0] == 1
    assert (ladder.gflops > 0).all() and (steps.share_of_fp32_gemm > 0).all()
    assert ("share_of_bf16_gemm" in ladder) == bf16
    assert "supervised UMAP" in stdout or not with_umap
    assert "share_of_fp32_gemm" in stdout and "load average" in stdout


def test_noise_check_quick_compares_the_default_with_the_rule_fixed(tmp_path):
    run_benchmark("noise_check", "--quick", out=tmp_path)
    (row,) = pd.read_csv(tmp_path / "noise_check.csv").to_dict("records")
    assert row["data"] == "digits" and row["checked"] and row["rule"] == 0.2
    switched = no_noise_wins(row["z"], (row["pilot_acc_rule"], row["pilot_acc_none"]))
    assert row["chosen"] in (row["rule"], 0.0) and (row["chosen"] == 0.0) == switched
    # Kept: the checked default is the fit with the rule's noise fixed.
    assert row["same_model"] == (row["chosen"] == row["rule"])
    assert row["head_default"] == row["head_rule"] or row["chosen"] == 0.0


def test_pilot_length_decides_as_the_check_at_each_share():
    from benchmarks.pilot_length import decisions

    y = np.arange(100) % 10
    wrong = (y + 1) % 10
    # Both pilots right on the first 40 rows from epoch 1; from epoch 5 on, no
    # noise is also right on the other 60 rows, the rule's noise on none.
    rule = np.tile(np.where(np.arange(100) < 40, y, wrong), (8, 1))
    none = rule.copy()
    none[4:] = y
    rows = decisions([rule, none], y, max_epochs=16, shares=(1 / 4, 1 / 2))
    # Stopped at epoch 4 (window: the last 2 epochs, 3-4): nothing disputed.
    assert rows[0]["stop_epoch"] == 4 and rows[0]["window"] == 2
    assert rows[0]["lead_pts"] == 0 and rows[0]["z"] == 0 and not rows[0]["switches"]
    # At epoch 8 (window 7-8): no noise right on 60 more rows, a lead of 60 points.
    assert rows[1]["acc_rule"] == 0.4 and rows[1]["acc_none"] == 1.0
    assert rows[1]["lead_pts"] == pytest.approx(60) and rows[1]["z"] == pytest.approx(np.sqrt(60))
    assert rows[1]["switches"]


def test_pilot_length_quick_writes_a_row_per_share(tmp_path):
    from benchmarks.pilot_length import SHARES

    stdout = run_benchmark("pilot_length", "--quick", out=tmp_path)
    table = pd.read_csv(tmp_path / "pilot_length.csv")
    assert list(table.share) == pytest.approx(SHARES)
    assert set(table.data) == {"digits"} and (table.encoder == "mlp").all() and (table.rule == 0.2).all()
    assert list(table.stop_epoch) == [2, 3, 4, 6, 8]  # of the quick run's 16 epochs
    assert table.acc_rule.between(0, 1).all() and table.acc_none.between(0, 1).all()
    summary = pd.read_csv(tmp_path / "pilot_length_summary.csv")
    assert len(summary) == len(SHARES) and (summary["others switched"] == "0 of 1").all() == (~table.switches).all()
    assert "amplitudes switched" in stdout


# commit_speed --quick: one pair of 1-epoch digits fits, each in a fresh process, about 10 s.


def _in_git_checkout():
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True).returncode == 0


@pytest.mark.skipif(not _in_git_checkout(), reason="commit_speed exports a commit: needs a git checkout")
def test_commit_speed_quick_run_fits_both_versions(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the exported tree and the data go there
    stdout = run_benchmark("commit_speed", "--quick", out=tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "commit_speed.csv")
    assert len(table) == 2 and table.version.iloc[0].startswith("baseline ") and table.version.iloc[1] == "working tree"
    assert (table.fit_s > 0).all() and table.head_acc.between(0, 1).all() and (table.latent_abs_sum > 0).all()
    assert "ratio of medians" in stdout
    assert not list(tmp_path.glob("skvae_commit_speed_*"))  # the exported tree is removed


def test_commit_speed_refuses_a_revision_that_is_no_commit(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.commit_speed", "--quick", "--baseline", "no-such-rev",
                           "--output", str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and "--baseline 'no-such-rev' is no commit" in proc.stderr
