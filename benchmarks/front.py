"""Separation against reconstruction (issue 13): the front of the separation knobs.

    python -m benchmarks.front              # RESULTS.md "Separation-reconstruction front" (~25 min on 2 cores)
    python -m benchmarks.front --quick      # smoke test: digits, 2-D, 10 epochs, two knob settings
    python -m benchmarks.front --summarize  # rewrite the front, goals and plot from front.csv

On MNIST (``common.load_dataset``: 8,000 training / 2,000 test images),
2-D and 8-D, seed 0, every model is ``DisentangledVAE(n_components=dims,
random_state=0)`` with one knob changed from its default:

* ``floor=<w>`` -- ``classification_weight=SigmoidDecay(start=100, end=w)``,
  the weight the classification loss decays to (default 30);
* ``constant=<w>`` -- ``classification_weight=w`` throughout (2-D only: the
  strongest separation this knob family gives);
* ``spacing=<s>`` -- ``class_spacing=s``, the distance between the class
  centres of the priors (default ``"auto"``: none in 2-D, 12 in 8-D);

and two anchors in the same run: the original recipe
(``quality.original_recipe()`` with the default training length) and supervised UMAP
(``umap.UMAP(n_components=dims, random_state=0)``, in the dimensions of
``--umap-dims``, 2 by default: its ``inverse_transform`` of the 2,000 test
points ran for over 20 minutes in 8-D; skipped without umap-learn). Columns: ``silhouette`` of the test latents with the true
labels, ``recon_ratio`` -- test reconstruction error over that of a plain VAE
(``fit(X)``, same dims and seed), ``head_acc``, ``knn5_acc``, ``fit_s``;
``on_front`` marks the skvae models no other skvae model beats on both
silhouette and reconstruction. Writes ``front.csv`` and ``front.png`` to
``--output`` (default ``benchmarks/results``) and prints the table and the
goals: the front dominates both anchors (some skvae model is at least as
separated and reconstructs at least as well), and the default is on the
front with ``recon_ratio`` <= 1.05 in 2-D, <= 1.10 in 8-D.
"""

import argparse
import importlib.util

import numpy as np
import pandas as pd
import torch

from benchmarks import quality
from benchmarks.common import add_output_argument, load_dataset, markdown, output_folder, timed
from skvae import DisentangledVAE, SigmoidDecay

#: Knob settings per latent dimension; "default" is the estimator's defaults.
KNOBS = {
    2: ["default", "floor=3", "floor=10", "floor=100", "constant=300", "constant=1000", "constant=3000",
        "spacing=3", "spacing=6", "spacing=9"],
    8: ["default", "floor=3", "floor=10", "floor=100", "spacing=none", "spacing=6", "spacing=18"],
}
RECON_LIMIT = {2: 1.05, 8: 1.10}


def knob_params(knob):
    if knob == "default":
        return {}
    name, value = knob.split("=")
    if name == "floor":
        return {"classification_weight": SigmoidDecay(start=100.0, end=float(value))}
    if name == "constant":
        return {"classification_weight": float(value)}
    return {"class_spacing": None if value == "none" else float(value)}


def fit_vae(data, dims, supervised=True, **params):
    """Fit a VAE (``fit(X)`` when not ``supervised``) and measure it: a row of ``front.csv``."""
    X_train, _, y_train, _ = data
    model = DisentangledVAE(n_components=dims, random_state=0, **params)
    _, fit_s = timed(lambda: model.fit(X_train, y_train) if supervised else model.fit(X_train))
    row = quality.evaluate(model.transform, model.inverse_transform, data, None, model.predict if supervised else None)
    return dict(row, fit_s=fit_s)


def on_front(table):
    """Whether each skvae row is beaten on both measures by no other skvae row."""
    points = table[["silhouette", "recon_ratio"]].to_numpy()
    beaten = [
        any((o[0] >= p[0]) and (o[1] <= p[1]) and (o != p).any() for o in points)
        for p in points
    ]
    return ~np.array(beaten)


def goals(table):
    lines = []
    for dims, group in table.groupby("dims"):
        ours = group[group.method == "skvae"]
        for anchor in ("original recipe", "supervised UMAP"):
            rows = group[group.method == anchor]
            if rows.empty:
                continue
            a = rows.iloc[0]
            winners = ours[(ours.silhouette >= a.silhouette) & (ours.recon_ratio <= a.recon_ratio)]
            lines.append({"dims": dims, "goal": f"front dominates {anchor}", "met": not winners.empty,
                          "figure": f"{anchor}: silhouette {a.silhouette:.3f}, recon {a.recon_ratio:.3f}; "
                          f"dominated by {', '.join(winners.knob) or 'none'}"})
        default = ours[ours.knob == "default"].iloc[0]
        limit = RECON_LIMIT.get(dims, 1.10)
        lines.append({"dims": dims, "goal": f"default on the front, recon <= {limit}x plain",
                      "met": bool(default.on_front and default.recon_ratio <= limit),
                      "figure": f"on front: {bool(default.on_front)}, silhouette {default.silhouette:.3f}, "
                      f"recon {default.recon_ratio:.3f}"})
    return pd.DataFrame(lines)


def plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims_list = sorted(table.dims.unique())
    fig, axes = plt.subplots(1, len(dims_list), figsize=(5.5 * len(dims_list), 4.5), squeeze=False)
    for ax, dims in zip(axes[0], dims_list):
        group = table[table.dims == dims]
        ours = group[group.method == "skvae"]
        front = ours[ours.on_front].sort_values("recon_ratio")
        ax.plot(front.recon_ratio, front.silhouette, "-", color="tab:blue", alpha=0.5, label="skvae front")
        ax.scatter(ours.recon_ratio, ours.silhouette, color="tab:blue", label="skvae (one knob changed)")
        for _, row in ours.iterrows():
            ax.annotate(row.knob, (row.recon_ratio, row.silhouette), fontsize=8, xytext=(4, 2),
                        textcoords="offset points")
        for anchor, marker, color in (("original recipe", "s", "tab:orange"), ("supervised UMAP", "^", "tab:green")):
            rows = group[group.method == anchor]
            if not rows.empty:
                ax.scatter(rows.recon_ratio, rows.silhouette, marker=marker, s=60, color=color, label=anchor)
        ax.axvline(RECON_LIMIT.get(dims, 1.10), color="gray", linestyle=":", label="recon goal of the default")
        ax.set_xlabel("test reconstruction error / plain VAE's")
        ax.set_ylabel("test silhouette")
        ax.set_title(f"{dims}-D")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: digits, 2-D, 10 epochs, two knob settings")
    parser.add_argument("--dims", nargs="+", type=int, default=[2, 8])
    parser.add_argument("--umap-dims", nargs="*", type=int, default=[2],
                        help="dimensions with a supervised-UMAP anchor (default: 2; none without umap-learn)")
    parser.add_argument("--summarize", action="store_true",
                        help="run nothing: rewrite the front, goals and plot from the front.csv in --output")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_output_argument(parser, "front.csv, front_goals.csv and front.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset, extra, knobs = "mnist", {}, KNOBS
    if args.quick:
        dataset, extra, args.dims = "digits", {"max_epochs": 10}, [2]
        knobs = {2: ["default", "floor=3"]}
    umap_dims = set() if args.quick else set(args.umap_dims)
    if umap_dims and importlib.util.find_spec("umap") is None:
        print("umap-learn is not installed: no supervised-UMAP anchor", flush=True)
        umap_dims = set()
    out = output_folder(args.output)
    if args.summarize:
        summarize(pd.read_csv(out / "front.csv"), out)
        return
    data = load_dataset(dataset)
    rows = []

    def add(row):
        rows.append(row)
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
        pd.DataFrame(rows).to_csv(out / "front.csv", index=False)  # a stopped run keeps what it did

    for dims in args.dims:
        plain = fit_vae(data, dims, supervised=False, **extra)
        add(dict(plain, dims=dims, method="plain VAE", knob="fit(X)"))
        for knob in knobs[dims]:
            add(dict(fit_vae(data, dims, **knob_params(knob), **extra), dims=dims, method="skvae", knob=knob))
        add(dict(fit_vae(data, dims, **quality.original_recipe(), **extra), dims=dims, method="original recipe",
                 knob=""))
        if dims in umap_dims:
            import umap

            def fit_umap():
                reducer = umap.UMAP(n_components=dims, random_state=0, n_jobs=1).fit(data[0], data[2])
                return quality.evaluate(reducer.transform, reducer.inverse_transform, data, None)

            row, seconds = timed(fit_umap)
            add(dict(row, fit_s=seconds, dims=dims, method="supervised UMAP", knob=""))
    summarize(pd.DataFrame(rows), out)


def summarize(table, out):
    """Add the reconstruction ratios and the front to the measured rows; write
    ``front.csv``, ``front_goals.csv`` and ``front.png``; print them."""
    table = table.drop(columns=["recon_ratio", "on_front"], errors="ignore")
    plain_mse = table[table.method == "plain VAE"].set_index("dims").recon_mse
    table["recon_ratio"] = table.recon_mse / table.dims.map(plain_mse)
    table["on_front"] = False
    for dims in table.dims.unique():
        ours = (table.dims == dims) & (table.method == "skvae")
        table.loc[ours, "on_front"] = on_front(table[ours])
    table.knob = table.knob.fillna("")
    table = table[["dims", "method", "knob", "silhouette", "recon_ratio", "recon_mse", "head_acc", "knn5_acc",
                   "fit_s", "on_front"]]
    table.to_csv(out / "front.csv", index=False)
    plot(table, out / "front.png")
    checks = goals(table)
    checks.to_csv(out / "front_goals.csv", index=False)
    print(markdown(table), "", markdown(checks), sep="\n")


if __name__ == "__main__":
    main()
