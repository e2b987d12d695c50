"""Command line: ``python -m skvae demo``."""

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _latent_dimension(text):
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"must be at least 2, as the demo draws planes of the latent space; got {value}"
        )
    return value


def _parser():
    parser = argparse.ArgumentParser(prog="python -m skvae", description="skvae command line")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train a DisentangledVAE, print a report and write figures",
        description="Train a DisentangledVAE on digits (default) or MNIST, print the "
        "head's test accuracy, the reconstruction error and the per-epoch table, "
        "and write four figures to a folder: the latent space with the classifier's "
        "regions, a grid of decoded latent points, the path between two classes, "
        "and the training history.",
    )
    demo.add_argument("--dataset", choices=["digits", "mnist"], default="digits",
                      help="load_digits (8x8, bundled) or MNIST read from --data-home")
    demo.add_argument("--data-home", default=None,
                      help="folder with the MNIST IDX files (default: $SKVAE_DATA or ~/.cache/skvae)")
    demo.add_argument("--epochs", type=int, default=None,
                      help="training epochs (default: the estimator's max_epochs='auto', "
                      "98 for the 1,437 training images of digits, 41 for the 8,000 of MNIST)")
    demo.add_argument("--n-components", type=_latent_dimension, default=2,
                      help="latent dimension, at least 2 (default: 2)")
    demo.add_argument("--interpolate", type=int, nargs=2, default=None, metavar=("A", "B"),
                      help="the two digits whose latent path is drawn (default: 0 and 8 when "
                      "their regions share a border, else the pair with the most confident "
                      "shared border; see class_border)")
    demo.add_argument("--output", default="demo_output", help="folder for the figures")
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar or epoch table")
    return parser


def _border(vae, a, b):
    """``vae.class_border(a, b)``, or None when the classifier never switches."""
    try:
        return vae.class_border(a, b)
    except ValueError:
        return None


def _describe_border(vae, a, b, border):
    """What lies between the centroids of ``a`` and ``b``, in words."""
    if border is None:
        return f"the classifier does not switch from {a} to {b} between their centroids"
    classes = list(vae.classes_)
    p = border.proba[classes.index(a)]
    if border.other_class_wins:
        others = [i for i in range(len(classes)) if classes[i] not in (a, b)]
        winner = classes[max(others, key=lambda i: border.proba[i])]
        return (f"the segment from {a} to {b} crosses the region of {winner} "
                f"(where p({a}) = p({b}) = {p:.2f}, p({winner}) = {border.max_other_proba:.2f})")
    return (f"{a} and {b} share a border (at t={border.t:.2f} of the segment, "
            f"p({a}) = p({b}) = {p:.2f} and no other class is more probable)")


def choose_pair(vae, preferred=(0, 8)):
    """The two classes whose interpolation the demo draws, and why.

    ``preferred`` when its regions share a border (``class_border`` finds a
    switch from one to the other with ``other_class_wins`` False); else the
    pair whose shared border is the most confident, the one whose border
    point has the highest ``p(a) = p(b)``. Returns ``((a, b), reasons)``,
    ``reasons`` a list of lines. Falls back to ``preferred`` (or the first
    two classes) when no pair shares a border.
    """
    classes = [c.item() if hasattr(c, "item") else c for c in vae.classes_]
    a, b = preferred
    if a in classes and b in classes:
        border = _border(vae, a, b)
        if border is not None and not border.other_class_wins:
            return (a, b), [_describe_border(vae, a, b, border)]
        reasons = [f"not {a} -> {b}: {_describe_border(vae, a, b, border)}"]
    else:
        reasons = [f"not {a} -> {b}: not both among the classes {classes}"]
    best = None
    for pair in itertools.combinations(classes, 2):
        border = _border(vae, *pair)
        if border is None or border.other_class_wins:
            continue
        p = border.proba[classes.index(pair[0])]
        if best is None or p > best[0]:
            best = (p, pair, border)
    if best is None:
        pair = (a, b) if a in classes and b in classes else tuple(classes[:2])
        reasons.append(f"no two classes share a border on the segment between their centroids; "
                       f"drawing {pair[0]} -> {pair[1]} anyway")
        return pair, reasons
    _, pair, border = best
    reasons.append(f"{_describe_border(vae, *pair, border)}: the most confident border "
                   f"that two classes share")
    return pair, reasons


def _write_figures(vae, X_train, X_test, y_test, pair, output):
    """Save the four displays as PNG files and the interactive latent explorer
    as ``explorer.html`` in ``output``; return their paths."""
    import matplotlib.pyplot as plt

    from .plotting import (
        InterpolationDisplay,
        LatentExplorer,
        LatentSpaceDisplay,
        LatentTraversalDisplay,
        TrainingHistoryDisplay,
    )

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    a, b = pair
    # Built one at a time so that only one figure is open at once.
    figures = {
        "latent_space.png": lambda: LatentSpaceDisplay.from_estimator(vae, X_test, y_test),
        "latent_traversal.png": lambda: LatentTraversalDisplay.from_estimator(vae, X_train),
        f"interpolation_{a}_{b}.png": lambda: InterpolationDisplay.from_estimator(vae, a, b),
        "training_history.png": lambda: TrainingHistoryDisplay.from_estimator(vae),
    }
    paths = []
    for name, make_display in figures.items():
        display = make_display()
        display.figure_.savefig(output / name, dpi=120)
        plt.close(display.figure_)
        paths.append(output / name)
    explorer = output / "explorer.html"
    LatentExplorer.from_estimator(vae, X_test, y_test).save_html(explorer)
    paths.append(explorer)
    return paths


def demo(args):
    """Train, print the report and write the figures; return the figures' paths."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from . import DisentangledVAE
    from .datasets import load_digits, load_mnist

    if args.dataset == "mnist":
        data = load_mnist(args.data_home, subset="test")
        image_shape = (28, 28)
    else:
        data = load_digits()
        image_shape = (8, 8)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, stratify=data.target, random_state=0
    )
    if args.interpolate is not None:
        classes = np.unique(y_train).tolist()
        unknown = [label for label in args.interpolate if label not in classes]
        if unknown:
            raise SystemExit(f"--interpolate: {unknown} not among the classes {classes}")
        if args.interpolate[0] == args.interpolate[1]:
            raise SystemExit(f"--interpolate: two different classes needed, got {args.interpolate}")
    params = dict(n_components=args.n_components, image_shape=image_shape,
                  random_state=args.random_state, verbose=0 if args.quiet else 1)
    if args.epochs is not None:
        params["max_epochs"] = args.epochs
    vae = DisentangledVAE(**params)
    print(f"Training {vae!r} on {args.dataset}: {len(X_train)} train / {len(X_test)} test samples")
    start = time.perf_counter()
    vae.fit(X_train, y_train)
    seconds = time.perf_counter() - start

    reconstruction = vae.inverse_transform(vae.transform(X_test))
    mse = float(np.mean((reconstruction - X_test) ** 2))
    print()
    print(f"trained {vae.max_epochs_} epochs in {seconds:.1f} s")
    print(f"head accuracy on the test split:       {vae.score(X_test, y_test):.3f}")
    print(f"reconstruction MSE per feature (test): {mse:.4f}")

    if args.interpolate is None:
        pair, reasons = choose_pair(vae)
    else:
        pair = tuple(args.interpolate)
        reasons = [_describe_border(vae, *pair, _border(vae, *pair))]
    print(f"interpolation: {pair[0]} -> {pair[1]}")
    for reason in reasons:
        print(f"  {reason}")

    paths = _write_figures(vae, X_train, X_test, y_test, pair, args.output)
    print()
    print("figures:")
    for path in paths:
        print(f"  {path}")
    return paths


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "demo":
        demo(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
