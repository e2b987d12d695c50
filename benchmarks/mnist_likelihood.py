"""Test log-likelihood of a plain VAE on binarised MNIST, beside the published figures.

    python -m benchmarks.mnist_likelihood              # ~3 min on 2 cores
    python -m benchmarks.mnist_likelihood --quick      # smoke test: 2 epochs, 10 importance samples

Published plain-VAE figures (negative log-likelihood on the 10,000 test
images, importance-sampled with 5,000 samples) are trained on the 60,000
training images of MNIST, binarised. Only the 10,000 test images are stored
here, so the model is trained on the MNIST standard split of skvae's
benchmarks (8,000 of them) and scored on the other 2,000: a model that saw
7.5 times fewer images, whose figure is therefore expected to be worse,
and is no reproduction.

Configuration: pixels binarised once, each drawn as Bernoulli(intensity)
with seed 0 ("stochastic binarisation", fixed); ``DisentangledVAE`` fitted
without labels (a plain VAE) with ``n_components`` (default 16),
``reconstruction="bce"`` and otherwise its defaults (MLP (512, 256),
``max_epochs="auto"``: 45 epochs for 8,000 rows, ``input_dropout="auto"``:
0.2); ``score_samples`` with 1, 100 and ``--n-samples`` (default 1,000)
importance samples.
"""

import argparse
import time

import numpy as np

from benchmarks.common import load_mnist_split
from skvae import DisentangledVAE


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-components", type=int, default=16)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    X_train, X_test, _, _ = load_mnist_split()
    rng = np.random.default_rng(0)
    X_train = (rng.uniform(size=X_train.shape) < X_train).astype(np.float32)
    X_test = (rng.uniform(size=X_test.shape) < X_test).astype(np.float32)
    params = dict(n_components=args.n_components, reconstruction="bce", random_state=0)
    if args.quick:
        params["max_epochs"] = 2
    start = time.perf_counter()
    vae = DisentangledVAE(**params).fit(X_train)
    print(f"fit: {vae.max_epochs_} epochs in {time.perf_counter() - start:.0f} s, input_dropout={vae.input_dropout_}")
    for n_samples in (1, 100, 10 if args.quick else args.n_samples):
        start = time.perf_counter()
        nll = -vae.score_samples(X_test, n_samples=n_samples)
        sem = nll.std() / np.sqrt(len(nll))
        print(f"n_samples={n_samples:5d}: test NLL {nll.mean():.2f} +- {sem:.2f} nats ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
