"""Redraw the static figures of the documentation's front page.

The front page and the README show a model trained on MNIST, which takes
about a minute and a half on 2 cores and needs the MNIST data, which a
documentation build may not have -- so its figures are committed under
``docs/_static/``. Run this after a change that alters what a
trained model looks like (defaults, losses, plotting)::

    .venv/bin/python docs/make_figures.py

It reads MNIST from ``$SKVAE_DATA`` or ``../shared/data/mnist``.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from skvae import DisentangledVAE  # noqa: E402
from skvae.datasets import mnist_standard_split  # noqa: E402
from skvae.plotting import InterpolationDisplay, LatentSpaceDisplay, LatentTraversalDisplay  # noqa: E402

STATIC = Path(__file__).resolve().parent / "_static"
DATA = os.environ.get("SKVAE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main():
    X_train, X_test, y_train, y_test = mnist_standard_split(DATA, download=False)
    vae = DisentangledVAE(n_components=2, image_shape=(28, 28), max_epochs=20, random_state=0)
    vae.fit(X_train, y_train)
    print(f"test accuracy {vae.score(X_test, y_test):.3f}")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    LatentSpaceDisplay.from_estimator(vae, X_test, y_test, ax=axes[0], scatter_kwargs={"s": 4})
    axes[0].set_title("MNIST test digits in the 2-D latent space")
    LatentTraversalDisplay.from_estimator(vae, X_test, n_images=15, ax=axes[1])
    axes[1].set_title("Decoded latent grid")
    fig.savefig(STATIC / "mnist_latent_space.png", dpi=80)

    display = InterpolationDisplay.from_estimator(vae, 0, 8, n_steps=11)
    display.figure_.savefig(STATIC / "mnist_interpolation_0_8.png", dpi=80)
    print(f"wrote figures to {STATIC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
