"""Command line: ``python -m skvae demo``."""

import argparse
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
        "head's test accuracy, the reconstruction error and a progress bar, "
        "and write four figures to a folder: the latent space with the classifier's "
        "regions, a grid of decoded latent points, the path between two classes, "
        "and the training history.",
    )
    demo.add_argument("--dataset", choices=["digits", "mnist"], default="digits",
                      help="load_digits (8x8, bundled) or MNIST read from --data-home")
    demo.add_argument("--data-home", default=None,
                      help="folder with the MNIST IDX files (default: $SKVAE_DATA or ~/.cache/skvae)")
    demo.add_argument("--download", action="store_true",
                      help="download the MNIST test files into --data-home when they are missing "
                      "(needs a network connection; without it a missing file is an error)")
    demo.add_argument("--epochs", type=int, default=None,
                      help="training epochs (default: the estimator's max_epochs='auto', "
                      "250 for the 1,437 training images of digits, 68 for the 8,000 of MNIST, "
                      "in 2-D; 167 and 45 where the classes have fixed centres)")
    demo.add_argument("--n-components", type=_latent_dimension, default=2,
                      help="latent dimension, at least 2 (default: 2)")
    demo.add_argument("--interpolate", type=int, nargs=2, default=(0, 8), metavar=("A", "B"),
                      help="two digits whose regions the model is asked to border each other "
                      "(class_neighbors), and whose latent path is drawn: the mixes between "
                      "them (default: 0 8)")
    demo.add_argument("--output", default="demo_output", help="folder for the figures")
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def describe_border(vae, a, b):
    """What lies between the centroids of ``a`` and ``b``, in words."""
    try:
        border = vae.class_border(a, b)
    except ValueError:
        return f"the classifier does not switch from {a} to {b} between their centroids"
    classes = vae.classes_.tolist()
    p = border.proba[classes.index(a)]
    if border.other_class_wins:
        others = [i for i in range(len(classes)) if classes[i] not in (a, b)]
        winner = classes[max(others, key=lambda i: border.proba[i])]
        return (f"the segment from {a} to {b} crosses the region of {winner} "
                f"(where p({a}) = p({b}) = {p:.2f}, p({winner}) = {border.max_other_proba:.2f})")
    return (f"{a} and {b} share a border (at t={border.t:.2f} of the segment, "
            f"p({a}) = p({b}) = {p:.2f} and no other class is more probable)")


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
        try:
            data = load_mnist(args.data_home, subset="test", download=args.download)
        except (OSError, ValueError) as error:  # missing, unreachable or corrupt files
            raise SystemExit(f"--dataset mnist: {error}") from None
        image_shape = (28, 28)
    else:
        data = load_digits()
        image_shape = (8, 8)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, stratify=data.target, random_state=0
    )
    pair = tuple(args.interpolate)
    classes = np.unique(y_train).tolist()
    unknown = [label for label in pair if label not in classes]
    if unknown:
        raise SystemExit(f"--interpolate: {unknown} not among the classes {classes}")
    if pair[0] == pair[1]:
        raise SystemExit(f"--interpolate: two different classes needed, got {list(pair)}")
    params = dict(n_components=args.n_components, image_shape=image_shape, class_neighbors=[pair],
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

    print(f"interpolation: {pair[0]} -> {pair[1]}")
    print(f"  {describe_border(vae, *pair)}")

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
