"""OpenMP thread wait policy: fit time alone and beside a CPU-bound process (issue 25).

    python -m benchmarks.wait_policy              # MNIST 8,000 (digits without it), 6 epochs, 2 repeats (~3 min)
    python -m benchmarks.wait_policy --quick      # smoke test: digits, 1 epoch, 1 repeat, two policies

``import skvae`` sets ``OMP_WAIT_POLICY=PASSIVE`` where the user has not set
it: torch's OpenMP threads (libgomp) then sleep at once when they run out of
work instead of spinning. Spinning is faster on a quiet machine, and a
disaster when another process holds a core. This measures the trade-off as
a user meets it: each fit runs in a fresh process (the policy is read when
OpenMP starts), ``import skvae`` first, a 2-D ``DisentangledVAE`` with its
defaults but ``max_epochs`` fitted with torch's default threads; once on the
machine as it is and once beside a second process that spins on one core.
Policies: ``PASSIVE`` (skvae's), libgomp's default (an empty
``OMP_WAIT_POLICY``, which ``import skvae`` leaves alone and libgomp reads as
unset: spin 300,000 rounds, then sleep), and bounded spins
(``GOMP_SPINCOUNT`` 10,000 and 100,000).

Writes ``wait_policy.csv`` (one row per fit: policy, loaded, repeat,
``fit_s``) to ``--output`` (default ``benchmarks/results``) and prints each
policy's median fit time alone, beside the spinning process, and their ratio.
"""

import argparse
import os
import subprocess
import sys
import time

import pandas as pd

from benchmarks.common import MnistMissing, add_output_argument, load_dataset, markdown, output_folder

POLICIES = {
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "libgomp default": {"OMP_WAIT_POLICY": ""},
    "GOMP_SPINCOUNT=10000": {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"},
    "GOMP_SPINCOUNT=100000": {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "100000"},
}

# The fit, as a user's script runs it: skvae imported first. Prints seconds.
FIT = """
import sys, time
import skvae
from benchmarks.common import load_dataset
from skvae import DisentangledVAE
X, _, y, _ = load_dataset({data!r})
start = time.perf_counter()
DisentangledVAE(n_components=2, max_epochs={epochs}, random_state=0).fit(X, y)
print(time.perf_counter() - start)
"""

SPIN = "while True: pass"


def fit_seconds(data, epochs, policy):
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(POLICIES[policy])
    result = subprocess.run(
        [sys.executable, "-c", FIT.format(data=data, epochs=epochs)], env=env, capture_output=True, text=True,
        check=True,
    )
    return float(result.stdout.split()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="digits, 1 epoch, 1 repeat, PASSIVE and libgomp's default")
    add_output_argument(parser, "wait_policy.csv")
    args = parser.parse_args(argv)
    policies, epochs, repeats = list(POLICIES), args.epochs, args.repeats
    data = "mnist"
    if args.quick:
        policies, epochs, repeats, data = policies[:2], 1, 1, "digits"
    else:
        try:
            load_dataset("mnist")
        except MnistMissing as missing:
            print(f"mnist: {missing}; measuring digits instead", flush=True)
            data = "digits"
    rows = []
    for loaded in (False, True):
        spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if loaded else None
        try:
            time.sleep(0.5 if loaded else 0)
            for repeat in range(repeats):
                for policy in policies:
                    rows.append({"data": data, "epochs": epochs, "policy": policy, "loaded": loaded, "repeat": repeat,
                                 "fit_s": fit_seconds(data, epochs, policy)})
                    print(rows[-1], flush=True)
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
    table = pd.DataFrame(rows)
    table.to_csv(output_folder(args.output) / "wait_policy.csv", index=False)
    medians = table.pivot_table(index="policy", columns="loaded", values="fit_s", aggfunc="median", sort=False)
    summary = pd.DataFrame({"alone_s": medians[False], "beside_a_spinning_process_s": medians[True]})
    summary["slowdown"] = summary.beside_a_spinning_process_s / summary.alone_s
    summary["vs_PASSIVE_alone"] = summary.alone_s / summary.alone_s["PASSIVE"]
    print(markdown(summary.reset_index(), floatfmt=".2f"))


if __name__ == "__main__":
    main()
