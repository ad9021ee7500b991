"""What a whole epoch of train.py costs, with flags against without: training, validation and SDR together.

    python benchmarks/bench_epoch.py --variants "--average-weights 0" ""   # the lab's weights, the average
    python benchmarks/bench_epoch.py --epochs 3 --rounds 3 --precision fp32 --variants "" "--batch-size 8"

bench_train.py times the training steps alone; a flag whose cost comes once
per epoch (a second validation, BatchNorm statistics measured for the moving
average of the weights: averaging.py) shows only here. Each round runs
train.py itself once per variant, in turns (so that a host whose speed drifts
shifts every variant alike), for --epochs epochs of the default recipe on the
default data (toy set, or --root), into a new temporary folder, the features
from the cache; the seconds per epoch are those train.py writes to
history.csv (from the first batch to the end of the validation, the saving
and the reports left out), the first epoch left out (warm-up). Prints each
variant's median seconds per epoch, the rounds, the ratio to the first
variant, and what the default 20 epochs would take.
"""

import argparse
import contextlib
import csv
import io
import os
import shlex
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import train  # noqa: E402
from device import describe_cpu  # noqa: E402


def epoch_seconds(args, variant):
    """train.py's seconds per epoch (history.csv) for epochs 2..--epochs of one run with `variant`'s flags."""
    with tempfile.TemporaryDirectory(prefix="bench-epoch-") as save_dir:
        flags = ["--epochs", str(args.epochs), "--save-dir", save_dir, "--precision", args.precision,
                 "--checkpoint-every", "1000", "--figure-every", "1000", "--quiet", "--seed", str(args.seed)] \
            + (["--root", args.root] if args.root else []) + shlex.split(variant)
        with contextlib.redirect_stdout(io.StringIO()):
            train.main(flags)
        with open(os.path.join(save_dir, "history.csv")) as f:
            return [float(row["seconds"]) for row in csv.DictReader(f)][1:]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=["--average-weights 0", ""], metavar="FLAGS",
                   help="train.py flags, one quoted string per variant, timed in turns")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not counted)")
    p.add_argument("--rounds", type=int, default=2, help="turns of all the variants")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--root", default=None, help="data (default: the toy set)")
    args = p.parse_args()
    if args.epochs < 2:
        p.error("--epochs must be at least 2: the first epoch is not counted")
    print(f"CPU: {describe_cpu()}, {torch.get_num_threads()} threads, capability "
          f"{torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}; --precision {args.precision}, "
          f"{args.epochs} epochs per run (the first not counted), {args.rounds} rounds in turns")
    seconds = {variant: [] for variant in args.variants}
    for _ in range(args.rounds):
        for variant in args.variants:
            seconds[variant] += epoch_seconds(args, variant)
    first = float(np.median(seconds[args.variants[0]]))
    for variant, values in seconds.items():
        median = float(np.median(values))
        print(f"  train.py {variant or '(the defaults)'}: {median:.1f} s per epoch (epochs: "
              f"{', '.join(f'{v:.1f}' for v in values)}), {median / first:.0%} of the first; "
              f"20 epochs: {20 * median / 60:.1f} min")


if __name__ == "__main__":
    main()
