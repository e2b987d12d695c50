"""Compiled training steps: is ``compile=True`` worth its compile time on this machine?

One run measures, alternating the things compared so that load hits them
alike, and printing the load average next to every number:

* training samples/s at steady state (compilation done) of the hand-written
  loop ladder -- eager with torch's default Adam (``foreach``), eager with
  fused Adam, ``torch.compile`` of forward + loss with fused Adam -- and of
  skvae's ``fit`` with ``compile=False`` and ``compile=True`` (the time of
  its epochs), for the default MLP at the default batch (256);
* the compile time: a fresh process's first compiled one-epoch fit less its
  eager one, with torch's on-disk compile cache cold (an empty cache folder)
  and warm (the same folder again);
* the break-even: optimizer steps after which a compiled fit has won its
  compile time back, ``compile_s / (eager_step_s - compiled_step_s)``;
* with ``--batch-dimension static``, skvae compiles each batch size anew
  instead of once with a dynamic batch dimension (steady state only);
* (not with ``--quick``) the default 2-D fit of the training rows, each in a
  fresh process (compile time included), ``compile=False`` vs ``True``.

    python -m benchmarks.compiled_step [--quick] [--repeats N] [--default-fits N] [--output DIR]

Writes ``compiled_step.csv`` and ``compiled_step.md`` to ``--output``
(default ``benchmarks/results``). Data: the MNIST standard split's 8,000
training rows when stored (``SKVAE_DATA``), else random pixels of that shape.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import training_speed
from benchmarks.common import (
    add_output_argument, command_line, load_average, machine, markdown, output_folder, run_line,
)
from benchmarks.roofline import load_data
from skvae import DisentangledVAE, _compile

COLUMNS = ["benchmark", "setting", "value", "unit", "load"]
#: The steady-state contenders: name -> the keyword arguments of :func:`train`.
LADDER = {
    "hand loop, eager, Adam(foreach)": dict(loop="hand", fused=False),
    "hand loop, eager, Adam(fused)": dict(loop="hand"),
    "hand loop, compiled + Adam(fused)": dict(loop="hand", compiled=True),
    "skvae fit, compile=False": dict(loop="skvae"),
    "skvae fit, compile=True": dict(loop="skvae", compiled=True),
}

# A fresh process's one-epoch fit, timed from before the fit to after it
# (the imports are not counted); argv: rows file, compile.
_FIT_PROBE = r"""
import sys, time
import numpy as np
from skvae import DisentangledVAE
data = np.load(sys.argv[1])
params = dict(random_state=0, compile=sys.argv[2] == "True")
if len(sys.argv) > 3:
    params["max_epochs"] = int(sys.argv[3])
start = time.perf_counter()
DisentangledVAE(**params).fit(data["X"], data["y"])
print(time.perf_counter() - start)
"""


def _params(**extra):
    return dict(random_state=0, warmup_steps=0, **extra)


def train(X, y, epochs, loop, fused=True, compiled=False, precision="32"):
    """Seconds that a contender takes to train ``epochs`` epochs at ``precision``.

    ``loop="skvae"``: the epochs of ``fit`` with ``compile=compiled`` (its
    optimizer is fused where torch has a fused kernel;
    ``training_speed.skvae_epochs``: without ``fit``'s once-per-call work, as
    the hand loop's time has none); ``loop="hand"``:
    ``training_speed.hand_loop`` with Adam fused or not and its forward pass
    and loss compiled or not.
    """
    if loop == "skvae":
        return training_speed.skvae_epochs(DisentangledVAE(**_params(compile=compiled, precision=precision)), X, y,
                                           epochs)
    return training_speed.hand_loop(DisentangledVAE(**_params(precision=precision)), X, y, epochs, fused=fused,
                                    compiled=compiled)


def steady_state(X, y, epochs, repeats, ladder=LADDER, beside=None):
    """Samples/s of every contender of ``ladder`` in each repeat, after a first run that compiles.

    ``beside`` ({name: call returning a rate}): measurements made in every
    repeat among the contenders, such as a reference GEMM rate. The order
    is reversed every other repeat, so that load hits all alike. Returns
    ``{name: [rate of each repeat]}``.
    """
    for settings in ladder.values():
        train(X, y, 1, **settings)
    calls = {name: lambda settings=settings: len(X) * epochs / train(X, y, epochs, **settings)
             for name, settings in ladder.items()}
    calls.update(beside or {})
    rates = {name: [] for name in calls}
    for repeat in range(repeats):
        for name in list(calls)[:: 1 if repeat % 2 == 0 else -1]:
            rates[name].append(calls[name]())
            print(f"  {name:<50} {rates[name][-1]:>9,.0f} (load {load_average()})", flush=True)
    return rates


def _fresh_fit(rows_file, compile, cache, epochs=None):
    """Seconds of a fit in a fresh process whose compile cache is the folder ``cache``."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(cache))
    if not str(cache):
        env.pop("TORCHINDUCTOR_CACHE_DIR")
    args = [sys.executable, "-c", _FIT_PROBE, str(rows_file), str(compile)] + ([str(epochs)] if epochs else [])
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return float(result.stdout.split()[-1])


def compile_time(rows_file, cache, states, add):
    """Seconds a fresh process's first compiled one-epoch fit takes more than its eager one,
    for each of ``states`` of the compile cache folder ``cache``: "cold" (empty), "warm"."""
    seconds = {}
    for state in states:
        eager = _fresh_fit(rows_file, False, cache, epochs=1)
        compiled = _fresh_fit(rows_file, True, cache, epochs=1)
        seconds[state] = compiled - eager
        add("compile time", f"fresh process, cache {state}", seconds[state], "s")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,024 rows, 1 epoch, 1 repeat, warm compile cache only, no default fits")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each steady-state run")
    parser.add_argument("--default-fits", type=int, default=2, help="default fits of each kind (0: none)")
    parser.add_argument("--batch-dimension", choices=["dynamic", "static"], default="dynamic",
                        help="how skvae compiles the batch dimension (static: each batch size anew)")
    add_output_argument(parser, "compiled_step.csv and compiled_step.md")
    args = parser.parse_args(argv)
    _compile.DYNAMIC_BATCH = args.batch_dimension == "dynamic"
    folder = output_folder(args.output)
    info = machine()
    X, _, y, _, source = load_data(quick=False)
    repeats, epochs, default_fits = args.repeats, args.epochs, args.default_fits
    if args.quick:
        X, y, repeats, epochs, default_fits = X[:1024], y[:1024], 1, 1, 0
    print(f"{source}; {len(X)} rows; load {load_average()}", flush=True)
    rows = []

    def add(benchmark, setting, value, unit):
        rows.append(dict(benchmark=benchmark, setting=setting, value=value, unit=unit, load=load_average()))
        print(f"{benchmark:<22} {setting:<38} {value:>10,.2f} {unit} (load {rows[-1]['load']})", flush=True)

    rates = {name: float(np.median(runs)) for name, runs in steady_state(X, y, epochs, repeats).items()}
    for name, rate in rates.items():
        add("steady state", name, rate, "samples/s")
    batch = DisentangledVAE().batch_size
    saved = {}
    names = list(LADDER)
    for kind, eager, compiled in (("hand loop", names[1], names[2]), ("skvae fit", names[3], names[4])):
        saved[kind] = batch / rates[eager] - batch / rates[compiled]
        add("speed-up", f"{kind}, compiled / eager (both Adam(fused))", rates[compiled] / rates[eager], "x")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        rows_file = scratch / "rows.npz"
        np.savez(rows_file, X=X, y=y)
        # --quick: the cache of this user's processes, warm after the steady-state runs.
        cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "") if args.quick else scratch / "inductor-cache"
        states = ("warm",) if args.quick else ("cold", "warm")
        if not _compile.DYNAMIC_BATCH:
            # The fresh processes would compile as the library does: dynamically.
            states, default_fits = (), 0
        seconds = compile_time(rows_file, cache, states, add)
        for state, cost in seconds.items():
            steps = cost / saved["skvae fit"] if saved["skvae fit"] > 0 else float("inf")
            add("break-even", f"skvae fit, compile cache {state}", steps, "steps")
        fits = {False: [], True: []}
        for repeat in range(default_fits):
            for compile in ((False, True) if repeat % 2 == 0 else (True, False)):
                fits[compile].append(_fresh_fit(rows_file, compile, cache))
                print(f"  default fit, compile={compile}: {fits[compile][-1]:.1f} s (load {load_average()})",
                      flush=True)
        for compile, times in fits.items():
            if times:
                add("default 2-D fit", f"compile={compile}, fresh process", float(np.median(times)), "s")
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.to_csv(folder / "compiled_step.csv", index=False)
    line = run_line(command_line("compiled_step", argv), info, load_average())
    (folder / "compiled_step.md").write_text(f"{line} Data: {source}.\n\n{markdown(table, floatfmt=',.2f')}\n")
    print(f"wrote {folder / 'compiled_step.csv'}")


if __name__ == "__main__":
    main()
