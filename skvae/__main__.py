"""Command line: ``python -m skvae demo``."""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _parser():
    parser = argparse.ArgumentParser(prog="python -m skvae", description="skvae command line")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train a DisentangledVAE, print a report and write figures",
        description="Train a DisentangledVAE on digits (default) or MNIST, print the "
        "head's test accuracy, the reconstruction error and the per-epoch table, "
        "and write figures of the latent space to a folder.",
    )
    demo.add_argument("--dataset", choices=["digits", "mnist"], default="digits",
                      help="load_digits (8x8, bundled) or MNIST read from --data-home")
    demo.add_argument("--data-home", default=None,
                      help="folder with the MNIST IDX files (default: $SKVAE_DATA or ~/.cache/skvae)")
    demo.add_argument("--epochs", type=int, default=None,
                      help="training epochs (default: the estimator's max_epochs)")
    demo.add_argument("--n-components", type=int, default=2, help="latent dimension")
    demo.add_argument("--output", default="demo_output", help="folder for the figures")
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar or epoch table")
    return parser


def demo(args):
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
    print(f"trained in {seconds:.1f} s")
    print(f"head accuracy on the test split:       {vae.score(X_test, y_test):.3f}")
    print(f"reconstruction MSE per feature (test): {mse:.4f}")
    return vae, (X_test, y_test)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "demo":
        demo(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
