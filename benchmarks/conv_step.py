"""One conv training step (batch 256, MNIST-sized images): skvae's conv path vs plain layers.

skvae's :class:`~skvae.modules.ConvEncoder` runs its convolutions through
``modules._run_conv`` (float32 weight gradients under bfloat16 autocast,
NCHW activations). This script times a training step (forward, loss,
backward, fused Adam) of the same weights three ways, per precision,
alternating them so that the load of a shared machine hits them alike:

* ``plain``: the layers called as they are (NCHW, autocast's kernels);
* ``channels-last``: channels-last activations, which paid for the former
  conv pair's wider layers;
* ``skvae``: what the library runs (in float32 the plain layers).

Prints the median ms per step, the worst step, samples/s and the median of
the per-repeat speed ratio against ``plain`` of the same precision.

    python -m benchmarks.conv_step [--repeats N] [--quick]
"""

import argparse
import copy
import statistics

import numpy as np
import torch

from benchmarks.common import command_line, cpu_runs_bf16, load_average, machine, run_line, timed
from skvae import DisentangledVAE, modules
from skvae.losses import DisentangledVAELoss

LIBRARY = modules._run_conv


def plain(layer, x):
    return layer(x)


def channels_last(layer, x):
    return layer(x.contiguous(memory_format=torch.channels_last))


WAYS = {"plain": plain, "channels-last": channels_last, "skvae": LIBRARY}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="batch 32, 2 repeats")
    args = parser.parse_args(argv)
    batch, repeats = (32, 2) if args.quick else (256, args.repeats)
    rng = np.random.default_rng(0)
    X = rng.random((batch, 784), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    est = DisentangledVAE(architecture="conv", image_shape=(28, 28), n_components=2, max_epochs=1,
                          batch_size=batch, random_state=0).fit(X, y)
    criterion = DisentangledVAELoss(est.reconstruction_, est.kl, est.beta, est.class_prior_means_)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    precisions = ["32"] + (["bf16-mixed"] if cpu_runs_bf16() else [])
    steps = {}
    for precision in precisions:
        for way, conv in WAYS.items():
            module = copy.deepcopy(est.net_.module_).train()
            optimizer = type(est.net_.optimizer_)(module.parameters(), **est.net_.optimizer_.defaults)

            def step(module=module, optimizer=optimizer, conv=conv, bf16=precision == "bf16-mixed"):
                modules._run_conv = conv
                optimizer.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = module(Xt)
                out = tuple(None if o is None else o.float() for o in out)
                criterion(out, Xt, yt, kl_weight=1.0, classification_weight=1.0)["loss"].backward()
                optimizer.step()

            step()  # warm-up: oneDNN kernel creation
            steps[precision, way] = step
    info = machine()
    times = {key: [] for key in steps}
    try:
        for repeat in range(repeats):
            for key in list(steps)[:: 1 if repeat % 2 == 0 else -1]:
                times[key].append(timed(steps[key])[1])
    finally:
        modules._run_conv = LIBRARY
    print(f"{run_line(command_line('conv_step', argv), info, load_average())} Batch {batch}, {repeats} repeats.")
    print("| precision | conv path | ms/step (median) | worst step ms | samples/s | speed vs plain |")
    print("|:--|:--|--:|--:|--:|--:|")
    for (precision, way), seconds in times.items():
        base = np.asarray(times[precision, "plain"])
        ratio = statistics.median(base / np.asarray(seconds))
        median = statistics.median(seconds)
        print(f"| {precision} | {way} | {median * 1e3:.0f} | {max(seconds) * 1e3:.0f} | {batch / median:,.0f} | "
              f"{ratio:.2f}x |")


if __name__ == "__main__":
    main()
