"""Training throughput: skvae (skorch) vs a hand-written PyTorch loop.

Both train the same module (same architecture, batch size, optimizer, loss
and thread count) on the same data; runs alternate so that machine noise
hits both alike. Prints samples/s and the ratio skvae / hand loop.

    python -m benchmarks.training_speed [--quick] [--architecture mlp|conv] [--repeats N]

``speed`` (through ``run_all --only speed``) and ``roofline`` run the same
comparison inside their tables; ``compiled_step`` runs the loop eager, with
fused Adam and compiled, and ``versus_umap`` the same also under bfloat16
autocast.
"""

import argparse
import time

import numpy as np
import torch

from benchmarks.common import timed
from skvae import DisentangledVAE
from skvae.estimator import auto_input_dropout
from skvae.losses import DisentangledVAELoss


def _forward_loss(module, criterion, xb, yb, noise):
    return criterion(module(xb, noise=noise), xb, yb, kl_weight=1.0, classification_weight=1.0)["loss"]


def hand_loop(vae, X, y, epochs, *, fused=None, compiled=False):
    """A plain PyTorch loop over the module skvae would build.

    ``fused``: the optimizer's fused kernel on (True) or off (False: torch's
    default, ``foreach``); None keeps skvae's setting. ``compiled``: the
    forward pass and loss compiled by ``torch.compile`` (one compilation per
    process, shared by the calls; the first call pays it). Where ``vae``'s
    ``precision`` is ``"bf16-mixed"`` the loop runs under bfloat16 autocast.

    The autocast context spans the whole loop, so its cast cache is turned
    off: with it, the bfloat16 copies of the weights made in the first step
    would be reused, stale, by every later step (the cache lives as long as
    the context), which skips work that a correct loop, and skvae, do.
    """
    torch.manual_seed(0)
    est = vae.set_params(max_epochs=1)
    est.fit(X[: est.batch_size], y[: est.batch_size])  # only to build an identical module
    module = est.net_.module_
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.05)
    criterion = DisentangledVAELoss(est.reconstruction_, est.kl, est.beta, est.class_prior_means_)
    # The optimizer skvae built, with its settings (fused where torch has it).
    built = est.net_.optimizer_
    settings = dict(built.defaults)
    if fused is not None:
        settings.update(fused=fused or None, foreach=None if fused else True)
    optimizer = type(built)(module.parameters(), **settings)
    forward_loss = torch.compile(_forward_loss) if compiled else _forward_loss
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    module.train()
    bf16 = est.precision == "bf16-mixed"
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):
        for _ in range(epochs):
            order = torch.randperm(len(Xt))
            for i in range(0, len(Xt), est.batch_size):
                idx = order[i : i + est.batch_size]
                xb, yb = Xt[idx], yt[idx]
                optimizer.zero_grad()
                # Drawn outside: compiled code cannot draw with a symbolic batch size.
                forward_loss(module, criterion, xb, yb, module.draw_noise(xb)).backward()
                optimizer.step()
    return time.perf_counter() - start


def skvae_fit(vae, X, y, epochs):
    """Seconds of ``vae.fit`` for ``epochs`` epochs.

    ``input_dropout="auto"`` is fixed to the width rule's noise, the noise
    the hand loop trains with: on 1,000 rows or more the rule is otherwise
    checked by two pilot fits first, whose epochs are not the steps compared.
    """
    if vae.input_dropout == "auto":
        vae.set_params(input_dropout=auto_input_dropout(X.shape[1]))
    _, seconds = timed(lambda: vae.set_params(max_epochs=epochs).fit(X, y))
    return seconds


def skvae_epochs(vae, X, y, epochs):
    """Seconds of the epochs of ``skvae_fit``: its history's durations.

    What the hand loop's time is: training epochs, without what ``fit``
    does once per call (checking the input, the class statistics, the
    network's set-up, the training rows' latent means at the end): about 2%
    of a 2-epoch fit on MNIST's 8,000 rows in the quiet ladder runs of
    2026-12-08 (13,171 samples/s by the whole fit, 13,426 by its epochs).
    """
    skvae_fit(vae, X, y, epochs)
    return sum(row["dur"] for row in vae.history_)


def measure(architecture="mlp", quick=False, repeats=3):
    """Median samples/s of skvae and of the hand loop, and their ratio."""
    n, epochs = (1024, 1) if quick else (8000, 2)
    rng = np.random.default_rng(0)
    X = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    params = dict(random_state=0, warmup_steps=0, batch_size=128)
    if architecture == "conv":
        params.update(architecture="conv", image_shape=(28, 28))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{architecture}, {n} rows x {epochs} epochs, batch 128")
    hand, ours = [], []
    for _ in range(1 if quick else repeats):
        hand.append(n * epochs / hand_loop(DisentangledVAE(**params), X, y, epochs))
        ours.append(n * epochs / skvae_fit(DisentangledVAE(**params), X, y, epochs))
    h, o = float(np.median(hand)), float(np.median(ours))
    return {"hand": h, "skvae": o, "ratio": o / h}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run: 1,024 rows, 1 epoch, 1 repeat")
    parser.add_argument("--architecture", choices=["mlp", "conv"], default="mlp")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = measure(args.architecture, args.quick, args.repeats)
    print(f"hand-written loop: {result['hand']:,.0f} samples/s")
    print(f"skvae fit:         {result['skvae']:,.0f} samples/s")
    print(f"ratio skvae / hand loop: {result['ratio']:.2f}")


if __name__ == "__main__":
    main()
