"""Roofline of skvae on this CPU: its FLOP/s as a share of the machine's GEMM rate.

One run measures, alternating the things compared so that load hits them
alike:

* the machine's float32 and bfloat16 matrix-product rate (``torch.matmul``
  of 4096x784 @ 784x512 and of the default MLP's layer shapes at the default
  batch size
  and at the 1024-row inference block), at the start and at the end;
* skvae's training (``fit``) and inference (``transform``,
  ``inverse_transform``) FLOP/s, counted analytically from the module's
  layers, as a fraction of the GEMM rate of its precision (4096x784 @
  784x512, timed right next to each skvae run, as the load of a shared
  machine changes by the second), for the default MLP and for
  ``architecture="conv"``;
* goals: ``fit`` vs a hand-written loop (``training_speed.hand_loop``,
  under ``torch.autocast`` for bfloat16) >= 0.9x; ``transform`` /
  ``inverse_transform`` vs a bare ``torch.inference_mode`` loop over the same
  module in the same 1024-row blocks >= 0.9x; bfloat16 vs float32
  throughput >= 1.6x, with the largest latent difference and the change of
  head accuracy between the two precisions on the same weights.

Every ratio is the median, over repeats, of the ratio of two runs made
next to each other; the order flips every repeat.

    python -m benchmarks.roofline [--quick] [--architectures mlp conv] [--output DIR]

Writes ``roofline.csv`` and ``roofline.md`` (a markdown section) to
``--output`` (default ``benchmarks/results``). Data: the MNIST standard
split (``common.load_mnist_split``) when stored, else random pixels of the
same shape (the report says which).
"""

import argparse
import copy
import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from benchmarks import training_speed
from benchmarks.common import (
    MnistMissing, add_output_argument, command_line, load_average, load_mnist_split, machine, output_folder,
    run_line, seconds_per_call, timed,
)
from skvae import DisentangledVAE
from skvae._inference import BLOCK_ROWS

PRECISIONS = ("32", "bf16-mixed")
DTYPES = {"32": torch.float32, "bf16-mixed": torch.bfloat16}
#: (rows, inner, outer) of the matrix products timed for the GEMM rate.
#: The default batch size, the rows of a training step.
BATCH = DisentangledVAE().batch_size
GEMM_SHAPES = [(4096, 784, 512), (BATCH, 784, 512), (BATCH, 512, 256), (1024, 784, 512), (1024, 512, 256)]
ARCHITECTURES = {"mlp": {}, "conv": {"architecture": "conv", "image_shape": (28, 28)}}
GOALS = {"vs hand loop": 0.9, "vs bare loop": 0.9, "bf16 / fp32": 1.6}
COLUMNS = ["benchmark", "architecture", "setting", "precision", "value", "unit", "target", "met"]


# --------------------------------------------------------------------- GEMM


def gemm_rates(repeats, min_seconds):
    """GFLOP/s of ``torch.matmul`` per (shape, precision): median of ``repeats``.

    float32 and bfloat16 alternate (their order flips every repeat).
    """
    generator = torch.Generator().manual_seed(0)
    times = {}
    for repeat in range(repeats):
        for rows, inner, outer in GEMM_SHAPES:
            a = torch.rand(rows, inner, generator=generator)
            b = torch.rand(inner, outer, generator=generator)
            for precision in PRECISIONS[:: 1 if repeat % 2 == 0 else -1]:
                dtype = DTYPES[precision]
                a_cast, b_cast = a.to(dtype), b.to(dtype)
                seconds = seconds_per_call(lambda: torch.matmul(a_cast, b_cast), min_seconds)
                times.setdefault((f"{rows}x{inner}x{outer}", precision), []).append(seconds)
    shapes = {f"{r}x{i}x{o}": 2 * r * i * o for r, i, o in GEMM_SHAPES}
    return {key: shapes[key[0]] / float(np.median(seconds)) / 1e9 for key, seconds in times.items()}


# -------------------------------------------------------------------- FLOPs


def layer_flops(module, n_features):
    """Forward FLOPs per row of each Linear / convolution layer of ``module``.

    ``2 * in * out`` per Linear; ``2 * out_positions * in_channels * kh * kw``
    per output channel of a Conv2d (its output size taken from one row run
    through the module). Biases and activations are not counted.

    Returns
    -------
    counts : list of (name, description, flops)
    """
    counts = []
    names = {layer: name for name, layer in module.named_modules()}

    def hook(layer, inputs, output):
        name = names[layer]
        if isinstance(layer, nn.Linear):
            flops = 2 * layer.in_features * layer.out_features
            text = f"Linear {layer.in_features}->{layer.out_features}"
        elif isinstance(layer, nn.Conv2d):
            _, c_out, h, w = output.shape
            kh, kw = layer.kernel_size
            flops = 2 * c_out * h * w * (layer.in_channels // layer.groups) * kh * kw
            text = f"Conv2d {tuple(inputs[0].shape[1:])}->{c_out}x{h}x{w} k{kh}x{kw}"
        else:
            return
        counts.append((name, text, flops))

    handles = [layer.register_forward_hook(hook) for layer in module.modules() if not list(layer.children())]
    was_training = module.training
    try:
        module.eval()
        with torch.inference_mode():
            module(torch.zeros(1, n_features))
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return counts


def flop_counts(module, n_features):
    """Per-row FLOPs of training, ``transform`` and ``inverse_transform``.

    Training is forward and backward of the whole module (encoder, decoder,
    latent classifier): 3x the forward count. ``transform`` runs the encoder
    (mean and log-variance heads), ``inverse_transform`` the decoder.
    """
    layers = layer_flops(module, n_features)
    part = lambda prefix: sum(f for name, _, f in layers if name.startswith(prefix))  # noqa: E731
    forward = sum(f for _, _, f in layers)
    return layers, {"train": 3 * forward, "transform": part("encoder."), "inverse_transform": part("decoder.")}


# --------------------------------------------------------------------- data


def load_data(quick):
    """Training rows, test rows and labels: MNIST when present, else random."""
    try:
        X_train, X_test, y_train, y_test = load_mnist_split()
        source = "MNIST standard split"
    except MnistMissing:
        rng = np.random.default_rng(0)
        X = rng.random((10_000, 784), dtype=np.float32)
        y = rng.integers(0, 10, 10_000)
        X_train, X_test, y_train, y_test = X[:8000], X[8000:], y[:8000], y[8000:]
        source = "random pixels in [0, 1], shape (8000, 784): MNIST is not stored here"
    if quick:
        X_train, y_train, X_test, y_test = X_train[:256], y_train[:256], X_test[:256], y_test[:256]
    return X_train, X_test, y_train, y_test, source


# ----------------------------------------------------------------- training


def reference_gemm(precision, calls=4):
    """A call of ``calls`` 4096x784 @ 784x512 products at ``precision``, and its FLOPs.

    Timed next to every measurement of skvae, so that its share of the GEMM
    rate compares two rates measured under the same load.
    """
    rows, inner, outer = GEMM_SHAPES[0]
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(rows, inner, generator=generator).to(DTYPES[precision])
    b = torch.rand(inner, outer, generator=generator).to(DTYPES[precision])

    def call():
        for _ in range(calls):
            torch.matmul(a, b)

    call()  # warm-up
    return call, 2 * rows * inner * outer * calls


def training(arch, X, y, epochs, repeats):
    """samples/s of skvae ``fit`` and of the hand loop, and the reference GEMM, per repeat.

    Each repeat runs, per precision, the reference GEMM, the hand loop and
    skvae (the order of precisions and of hand loop / skvae flips every
    repeat). Returns ``{key: [value per repeat]}``: ``("skvae" | "hand loop"
    | "skvae epochs only", precision)`` in samples/s, ``("gemm",
    precision)`` in FLOP/s.
    """
    params = dict(n_components=2, random_state=0, warmup_steps=0, **ARCHITECTURES[arch])
    gemm = {p: reference_gemm(p) for p in PRECISIONS}
    rates = {}
    for repeat in range(repeats):
        for precision in PRECISIONS[:: 1 if repeat % 2 == 0 else -1]:
            call, flops = gemm[precision]
            rates.setdefault(("gemm", precision), []).append(flops / timed(call)[1])
            for who in ("hand loop", "skvae")[:: 1 if repeat % 2 == 0 else -1]:
                vae = DisentangledVAE(precision=precision, **params)
                if who == "skvae":
                    seconds = training_speed.skvae_fit(vae, X, y, epochs)
                    # The epochs alone, without fit's checks, set-up and class statistics.
                    epochs_only = sum(row["dur"] for row in vae.history_)
                    rates.setdefault(("skvae epochs only", precision), []).append(len(X) * epochs / epochs_only)
                else:
                    seconds = training_speed.hand_loop(vae, X, y, epochs)
                rates.setdefault((who, precision), []).append(len(X) * epochs / seconds)
                print(f"  {arch} train {precision:>10} {who:<9} {rates[who, precision][-1]:>9,.0f} samples/s "
                      f"(load {load_average()})", flush=True)
    return rates


# ---------------------------------------------------------------- inference


def with_precision(estimator, precision):
    """A copy of a fitted estimator whose inference runs at ``precision`` (same weights)."""
    other = copy.deepcopy(estimator)
    other.precision = precision
    other.net_.precision = precision
    return other


def bare_loop(function, data, n_columns, precision):
    """``function`` over ``data`` in BLOCK_ROWS-row blocks: torch only, no checks."""
    X = torch.from_numpy(data)
    out = torch.empty((len(X), n_columns), dtype=torch.float32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
        for start in range(0, len(X), BLOCK_ROWS):
            out[start : start + BLOCK_ROWS] = function(X[start : start + BLOCK_ROWS])
    return out


def inference(estimators, X, Z, repeats):
    """rows/s of skvae and of the bare loop, per repeat, and the reference GEMM.

    Returns ``{key: [value per repeat]}``: ``(what, precision, "skvae" |
    "bare loop")`` in rows/s for ``what`` in transform / inverse_transform,
    ``("gemm", precision)`` in FLOP/s. Every repeat runs every call once,
    in an order reversed every other repeat.
    """
    calls, n_rows = {}, {}
    for precision, est in estimators.items():
        est.net_.module_.eval()
        module = est.net_.module_
        calls["gemm", precision], n_rows["gemm", precision] = reference_gemm(precision)
        calls["transform", precision, "skvae"] = lambda est=est: est.transform(X)
        calls["transform", precision, "bare loop"] = lambda m=module, p=precision: bare_loop(
            lambda b: m.encoder(b)[0], X, Z.shape[1], p
        )
        calls["inverse_transform", precision, "skvae"] = lambda est=est: est.inverse_transform(Z)
        calls["inverse_transform", precision, "bare loop"] = lambda m=module, p=precision: bare_loop(
            m.decode, Z, X.shape[1], p
        )
    for call in calls.values():  # warm-up (oneDNN kernel creation)
        call()
    rates = {}
    for repeat in range(repeats):
        for key in list(calls)[:: 1 if repeat % 2 == 0 else -1]:
            rates.setdefault(key, []).append(n_rows.get(key, len(X)) / timed(calls[key])[1])
    return rates


def paired(numerator, denominator):
    """Median over repeats of the ratio of two measurements of the same repeat."""
    return float(np.median(np.asarray(numerator) / np.asarray(denominator)))


def quality_model(arch, X, y, epochs, precision="32"):
    """A model trained long enough for its head accuracy to mean something."""
    params = dict(n_components=2, random_state=0, max_epochs=epochs, precision=precision, **ARCHITECTURES[arch])
    return DisentangledVAE(**params).fit(X, y)


def precision_effect(est32, est16, X_test, y_test):
    """Largest latent difference and head-accuracy change, bf16 vs fp32, same weights."""
    Z32, Z16 = est32.transform(X_test), est16.transform(X_test)
    acc32 = float(np.mean(est32.predict(X_test) == y_test))
    acc16 = float(np.mean(est16.predict(X_test) == y_test))
    return {
        "max latent |bf16 - fp32|": float(np.max(np.abs(Z16 - Z32))),
        "latent std (fp32)": float(np.std(Z32)),
        "head accuracy fp32": acc32,
        "head accuracy bf16": acc16,
        "head accuracy change bf16 - fp32": acc16 - acc32,
    }


# --------------------------------------------------------------------- main


def run(quick=False, architectures=tuple(ARCHITECTURES)):
    """Every measurement as a DataFrame of COLUMNS, and the machine description."""
    info = machine()
    rows = []

    def add(benchmark, arch, setting, precision, value, unit, target=None):
        met = "" if target is None else ("met" if value >= target else "missed")
        rows.append(dict(benchmark=benchmark, architecture=arch, setting=setting, precision=precision,
                         value=float(value), unit=unit, target=math.nan if target is None else target, met=met))
        goal = "" if target is None else f"  (goal >= {target}: {met})"
        print(f"{benchmark:<18} {arch:<5} {setting:<34} {precision:>10} {value:>14,.4g} {unit}{goal}", flush=True)

    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['cpu_capability']}), "
          f"{info['torch_threads']} threads, load {info['load']}", flush=True)
    gemm_repeats, gemm_seconds = (1, 0.02) if quick else (3, 0.3)
    first = gemm_rates(gemm_repeats, gemm_seconds)

    X_train, X_test, y_train, y_test, source = load_data(quick)
    info["data"] = source
    print(f"data: {source}", flush=True)
    # Rows and epochs timed in training, rows run through inference (whole
    # blocks), repeats, and epochs of the model whose head accuracy is compared.
    if quick:
        settings = {"mlp": dict(train_rows=256, epochs=1, repeats=1, rows=BLOCK_ROWS, infer_repeats=1,
                                quality_epochs=1),
                    "conv": dict(train_rows=128, epochs=1, repeats=1, rows=BLOCK_ROWS, infer_repeats=1,
                                 quality_epochs=1)}
    else:
        settings = {"mlp": dict(train_rows=8000, epochs=2, repeats=5, rows=8 * BLOCK_ROWS, infer_repeats=11,
                                quality_epochs=10),
                    "conv": dict(train_rows=2048, epochs=1, repeats=5, rows=2 * BLOCK_ROWS, infer_repeats=11,
                                 quality_epochs=10)}
    results = {}
    for arch, setting in ((arch, settings[arch]) for arch in architectures):
        n_train = min(setting["train_rows"], len(X_train))
        rates = training(arch, X_train[:n_train], y_train[:n_train], setting["epochs"], setting["repeats"])
        models = {p: quality_model(arch, X_train, y_train, setting["quality_epochs"], p) for p in PRECISIONS}
        layers, flops = flop_counts(models["32"].net_.module_, X_train.shape[1])
        X_inf = np.resize(X_train, (setting["rows"], X_train.shape[1]))
        estimators = {p: with_precision(models["32"], p) for p in PRECISIONS}
        Z_inf = estimators["32"].transform(X_inf)
        infer = inference(estimators, X_inf, Z_inf, setting["infer_repeats"])
        effect = precision_effect(estimators["32"], estimators["bf16-mixed"], X_test, y_test)
        trained16 = float(np.mean(models["bf16-mixed"].predict(X_test) == y_test))
        results[arch] = dict(rates=rates, layers=layers, flops=flops, infer=infer, effect=effect,
                             trained16=trained16, n_train=n_train, **setting)

    second = gemm_rates(gemm_repeats, gemm_seconds)
    info["load_end"] = load_average()
    gemm = {key: float(np.median([first[key], second[key]])) for key in first}

    for (shape, precision), value in gemm.items():
        add("gemm", "-", f"{shape} (start)", precision, first[shape, precision], "GFLOP/s")
        add("gemm", "-", f"{shape} (end)", precision, second[shape, precision], "GFLOP/s")
        add("gemm", "-", shape, precision, value, "GFLOP/s")

    median = lambda values: float(np.median(values))  # noqa: E731
    for arch, r in results.items():
        for name, text, f in r["layers"]:
            add("flops", arch, f"{name}: {text}", "-", f, "FLOP/row")
        for what, f in r["flops"].items():
            add("flops", arch, what, "-", f, "FLOP/row")
        rates, infer = r["rates"], r["infer"]
        for precision in PRECISIONS:
            ours, hand = rates["skvae", precision], rates["hand loop", precision]
            setting = f"{r['n_train']} rows x {r['epochs']} epochs, batch {BATCH}"
            add("training", arch, f"skvae fit ({setting})", precision, median(ours), "samples/s")
            add("training", arch, f"hand loop ({setting})", precision, median(hand), "samples/s")
            add("training", arch, "skvae epochs only (history dur)", precision,
                median(rates["skvae epochs only", precision]), "samples/s")
            add("training", arch, "reference GEMM next to it", precision,
                median(rates["gemm", precision]) / 1e9, "GFLOP/s")
            add("training", arch, "skvae GFLOP/s", precision, median(ours) * r["flops"]["train"] / 1e9, "GFLOP/s")
            add("training", arch, "skvae share of GEMM rate", precision,
                paired(np.asarray(ours) * r["flops"]["train"], rates["gemm", precision]), "fraction")
            add("goal", arch, "training skvae / hand loop", precision, paired(ours, hand), "x",
                GOALS["vs hand loop"])
            for what in ("transform", "inverse_transform"):
                skvae_rate, bare = infer[what, precision, "skvae"], infer[what, precision, "bare loop"]
                add(what, arch, f"skvae ({r['rows']} rows)", precision, median(skvae_rate), "rows/s")
                add(what, arch, f"bare loop ({r['rows']} rows)", precision, median(bare), "rows/s")
                add(what, arch, "reference GEMM next to it", precision, median(infer["gemm", precision]) / 1e9,
                    "GFLOP/s")
                add(what, arch, "skvae GFLOP/s", precision, median(skvae_rate) * r["flops"][what] / 1e9, "GFLOP/s")
                add(what, arch, "skvae share of GEMM rate", precision,
                    paired(np.asarray(skvae_rate) * r["flops"][what], infer["gemm", precision]), "fraction")
                add("goal", arch, f"{what} skvae / bare loop", precision, paired(skvae_rate, bare), "x",
                    GOALS["vs bare loop"])
        for what in ("transform", "inverse_transform"):
            add("goal", arch, f"{what} skvae bf16 / fp32", "-",
                paired(infer[what, "bf16-mixed", "skvae"], infer[what, "32", "skvae"]), "x", GOALS["bf16 / fp32"])
        add("goal", arch, "training skvae bf16 / fp32", "-",
            paired(rates["skvae", "bf16-mixed"], rates["skvae", "32"]), "x", GOALS["bf16 / fp32"])
        add("precision effect", arch, "epochs of the compared models", "-", r["quality_epochs"], "epochs")
        for name, value in r["effect"].items():
            add("precision effect", arch, name, "-", value, "accuracy" if "accuracy" in name else "latent units")
        add("precision effect", arch, "head accuracy of the bf16-trained model", "bf16-mixed", r["trained16"],
            "accuracy")
    return pd.DataFrame(rows, columns=COLUMNS), info


def report(table, info, command):
    """The "Roofline" section of RESULTS.md for one run."""
    value = table.set_index(["benchmark", "architecture", "setting", "precision"]).value
    lines = [
        "## Roofline",
        "",
        f"{run_line(command, info, info['load_end'])} "
        f"Data: {info['data']}. Each ratio is the median over repeats of the ratio of two runs made next to "
        "each other in the same repeat (the order flips every repeat).",
        "",
        "Matrix-product rate (`torch.matmul`, GFLOP/s, median of the start and end measurements):",
        "",
        "| shape (rows x in x out) | fp32 | bf16 | bf16 / fp32 |",
        "|:--|--:|--:|--:|",
    ]
    for r, i, o in GEMM_SHAPES:
        shape = f"{r}x{i}x{o}"
        f32, b16 = value["gemm", "-", shape, "32"], value["gemm", "-", shape, "bf16-mixed"]
        lines.append(f"| {shape} | {f32:,.1f} | {b16:,.1f} | {b16 / f32:.2f} |")
    # The architectures this run measured, in ARCHITECTURES' order.
    measured = [arch for arch in ARCHITECTURES if arch in set(table.architecture)]
    lines += ["", "FLOPs per row (forward, x3 for training):", "", "| part | " + " | ".join(measured) + " |",
              "|:--|" + "--:|" * len(measured)]
    for what in ("train", "transform", "inverse_transform"):
        lines.append(f"| {what} | " + " | ".join(f"{value['flops', arch, what, '-']:,.0f}" for arch in measured) + " |")
    lines += ["", "skvae's rate as a share of the GEMM rate of its precision (4096x784 @ 784x512, timed next to "
              "each skvae run: the median over repeats of the ratio of the two):", "",
              "| architecture | work | precision | rate | GFLOP/s | GEMM GFLOP/s | share of GEMM |",
              "|:--|:--|:--|--:|--:|--:|--:|"]
    for arch in measured:
        for what, unit in (("training", "samples/s"), ("transform", "rows/s"), ("inverse_transform", "rows/s")):
            for precision in PRECISIONS:
                sub = table[(table.benchmark == what) & (table.architecture == arch) & (table.precision == precision)]
                rate = sub[sub.setting.str.startswith("skvae ")].iloc[0].value
                gflops = value[what, arch, "skvae GFLOP/s", precision]
                reference = value[what, arch, "reference GEMM next to it", precision]
                share = value[what, arch, "skvae share of GEMM rate", precision]
                lines.append(f"| {arch} | {what} | {precision} | {rate:,.0f} {unit} | {gflops:.1f} | "
                             f"{reference:.1f} | {share:.0%} |")
    lines += ["", "Training, samples/s (skvae's epochs alone: the sum of its history's `dur`):", "",
              "| architecture | precision | hand loop | skvae fit | skvae epochs only |", "|:--|:--|--:|--:|--:|"]
    for arch in measured:
        for precision in PRECISIONS:
            sub = table[(table.benchmark == "training") & (table.architecture == arch) & (table.precision == precision)]
            rate = sub.set_index(sub.setting.str.split(" (", regex=False).str[0]).value
            lines.append(f"| {arch} | {precision} | {rate['hand loop']:,.0f} | {rate['skvae fit']:,.0f} | "
                         f"{rate['skvae epochs only']:,.0f} |")
    lines += ["", "Goals:", "", "| architecture | goal | precision | figure | target | |", "|:--|:--|:--|--:|--:|:--|"]
    for row in table[table.benchmark == "goal"].itertuples():
        lines.append(f"| {row.architecture} | {row.setting} | {row.precision} | {row.value:.2f}x | "
                     f">= {row.target} | {row.met} |")
    lines += ["", "Precision effect (test rows; a model trained in float32, run in each precision with the same "
              "weights, and the same model trained in bf16):", ""]
    for arch in measured:
        e = table[(table.benchmark == "precision effect") & (table.architecture == arch)].set_index("setting").value
        lines.append(
            f"* {arch} ({e['epochs of the compared models']:.0f} epochs): max latent |bf16 - fp32| "
            f"{e['max latent |bf16 - fp32|']:.3g} (latent std "
            f"{e['latent std (fp32)']:.3g}); head accuracy {e['head accuracy fp32']:.4f} (fp32) vs "
            f"{e['head accuracy bf16']:.4f} (bf16), change {e['head accuracy change bf16 - fp32']:+.4f}; "
            f"a model trained in bf16: {e['head accuracy of the bf16-trained model']:.4f}."
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for the test suite")
    add_output_argument(parser, "roofline.csv and roofline.md")
    parser.add_argument("--architectures", nargs="+", choices=list(ARCHITECTURES), default=list(ARCHITECTURES),
                        help="architectures to measure (default: all)")
    args = parser.parse_args(argv)
    table, info = run(args.quick, args.architectures)
    out = output_folder(args.output)
    table.to_csv(out / "roofline.csv", index=False)
    text = report(table, info, command_line("roofline", argv))
    (out / "roofline.md").write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()
