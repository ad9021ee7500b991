"""Does training run at the model's own speed, and does a second run skip decoding?

    python benchmarks/bench_train.py                                   # default data, model and batch
    python benchmarks/bench_train.py --precisions fp32 bf16 --decode-rounds 0   # the two, in turns
    python benchmarks/bench_train.py --batches 40 --precisions fp32 --no-channels-last
    python benchmarks/bench_train.py --precisions fp32 --decode-rounds 0 --variants "" "--pitch-tempo 2 0.2 0.5"

1. Data: loads the features of the default data (toy set, or --root) into an
   empty cache folder (first run: decodes every song) and then again (second
   run: reads the cache only), and times both; the first run once per
   --decode-jobs value, in turns (--decode-rounds), all from a cold cache.
2. Throughput, in one process, for each of --precisions: train.py itself
   (train.main for 2 epochs of --batches batches on the cached features;
   the patches/s it writes to history.csv for its second epoch, which
   covers its training steps only: PatchDataset from the memory-mapped
   cache, DataLoader, forward, L1 loss, backward, Adam) against the bare
   model's forward + backward + Adam step on random tensors of the same
   batch, precision and memory layout. Their ratio is what the data
   pipeline costs. All are timed in turns (--rounds), so that a machine
   whose speed drifts (turbo, a neighbour on a shared host) shifts every
   variant alike; the medians are reported.
3. The validation SDR that train.py scores after every epoch
   (separation.model_sdr on the validation songs, whole, with their
   median): its seconds, timed in the same turns, against one default epoch
   (its --samples-per-track patches per training song at the loop's speed,
   plus the validation loss over the validation tiling).
"""

import argparse
import contextlib
import csv
import io
import os
import shlex
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import train  # noqa: E402
from audio import SignalConfig  # noqa: E402
from cli import describe_cpu, describe_device, memory_plan, pick_device, pick_precision  # noqa: E402
from data import PatchDataset, load_features  # noqa: E402
from songs import DEFAULT_CACHE_DIR, split_data  # noqa: E402
from unet_model import UNet, UNetConfig  # noqa: E402


def time_features(split, signal_config, jobs=1):
    """Seconds to load the training and validation features cold (decode, `jobs` songs at a time) and warm
    (cache); the training and the validation features."""
    folder = tempfile.mkdtemp(prefix="bench-cache-")
    try:
        tracks = split.train + split.valid
        start = time.perf_counter()
        load_features(tracks, signal_config, folder, quiet=True, jobs=jobs)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        features = load_features(tracks, signal_config, folder, quiet=True)
        warm = time.perf_counter() - start
        features = [f.copy() for f in features]
        return cold, warm, features[:len(split.train)], features[len(split.train):]
    finally:
        shutil.rmtree(folder)


def make_model(args, device):
    model = UNet(UNetConfig()).to(device)
    if memory_plan(device, args.channels_last).channels_last:  # as train.py lays it out
        model = model.to(memory_format=torch.channels_last)
    return model


def synchronize(device):
    """Wait for the work queued on `device`: a GPU computes after its calls return, so a clock read
    without this would time the queueing."""
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


def loop_speed(args, precision, variant=""):
    """A function that runs train.py itself (2 epochs of `batches` batches, flags as given and the `variant`'s,
    the features from the cache) and returns the patches/s it measured over its second epoch's training steps."""
    def run(batches):
        with tempfile.TemporaryDirectory(prefix="bench-train-") as save_dir:
            flags = ["--epochs", "2", "--max-batches", str(batches), "--batch-size", str(args.batch_size),
                     "--precision", precision, "--n-songs", str(args.n_songs), "--cache-dir", args.cache_dir,
                     "--save-dir", save_dir, "--sdr-every", "1000", "--figure-every", "1000",
                     "--checkpoint-every", "1000", "--quiet"] + (["--root", args.root] if args.root else []) \
                + (["--cpu"] if args.cpu else []) \
                + ([] if args.channels_last is None else ["--channels-last" if args.channels_last else
                                                          "--no-channels-last"]) + shlex.split(variant)
            with contextlib.redirect_stdout(io.StringIO()):
                train.main(flags)
            with open(os.path.join(save_dir, "history.csv")) as f:
                return float(list(csv.DictReader(f))[-1]["patches_per_s"])

    return run


def bare_speed(signal_config, args, device, amp_dtype):
    """A function that runs `batches` of forward + L1 loss + backward + Adam on random tensors (no data
    loading) and returns patches/s."""
    model = make_model(args, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mix = torch.rand(args.batch_size, signal_config.freq_bins, signal_config.patch_frames, device=device)
    vocals = 0.3 * mix

    def step():
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            mask = model(mix)
        loss = train.L1Loss()(mask.float(), mix, vocals)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def run(batches):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(batches):
            step()
        synchronize(device)
        return batches * args.batch_size / (time.perf_counter() - start)

    return run


def sdr_seconds(valid_features, signal_config, args, device):
    """A function that scores the validation songs' SDR as train.py does after an epoch, and returns
    (seconds of the SDR, seconds of the validation loss over the tiling) of one epoch's model."""
    from torch.utils.data import DataLoader

    from metrics import model_sdr

    model = make_model(args, device)
    loader = DataLoader(PatchDataset(valid_features, signal_config.patch_frames), batch_size=args.batch_size)

    def run(batches=None):
        start = time.perf_counter()
        model_sdr(model, valid_features, signal_config)
        middle = time.perf_counter()
        train.validate(model, loader, train.L1Loss(), device)
        return middle - start, time.perf_counter() - middle

    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=None, help="data (default: $MUSDB_PATH, else the toy set)")
    p.add_argument("--n-songs", type=int, default=10, help="training songs, as train.py")
    p.add_argument("--decode-jobs", type=int, nargs="+", default=[1, 2], help="first runs to time, in turns")
    p.add_argument("--decode-rounds", type=int, default=3, help="turns of the first runs (0: load the features "
                   "once, untimed)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--samples-per-track", type=int, default=48, help="as train.py: the epoch the SDR is set against")
    p.add_argument("--batches", type=int, default=8, help="timed batches per round, for each of the two")
    p.add_argument("--rounds", type=int, default=3, help="turns of loop then bare model")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches first, for each of the two")
    p.add_argument("--precisions", choices=("auto", "fp32", "bf16"), nargs="+", default=["auto"],
                   help="train.py's --precision values to time, in turns")
    p.add_argument("--variants", nargs="+", default=[""], metavar="FLAGS",
                   help="train.py flags to time, one quoted string per variant, in turns (default: none)")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="train.py's feature cache (filled once)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="default: as train.py, on except on an Apple GPU")
    p.add_argument("--cpu", action="store_true")
    args = p.parse_args()

    device = pick_device(args.cpu)
    signal_config = SignalConfig()
    split = split_data(args.root, args.n_songs, quiet=True, strict=False)
    colds = {jobs: [] for jobs in args.decode_jobs}
    for _ in range(args.decode_rounds):
        for jobs in args.decode_jobs:
            cold, warm, features, valid_features = time_features(split, signal_config, jobs)
            colds[jobs].append(cold)
    if not args.decode_rounds:  # no first run to time, but the throughput still needs the features
        _, warm, features, valid_features = time_features(split, signal_config)
    load_features(split.train + split.valid, signal_config, args.cache_dir, quiet=True)  # train.py's own cache
    n_tracks = len(features) + len(valid_features)
    minutes = sum(t.duration for t in split.train + split.valid) / 60
    print(f"Features of {n_tracks} songs ({split.source}, {minutes:.1f} min of audio), CPU {describe_cpu()}, "
          f"{os.cpu_count()} cores: second run {warm:.3f} s (cache only)"
          + (f"; first run (decoding), median of {args.decode_rounds} in turns:" if args.decode_rounds else ""))
    if args.decode_rounds:
        for jobs, times in colds.items():
            print(f"  --decode-jobs {jobs}: {np.median(times):.2f} s (rounds: {', '.join(f'{t:.2f}' for t in times)})")

    dtypes = {precision: pick_precision(precision, device) for precision in args.precisions}
    timers = {}
    for precision, amp_dtype in dtypes.items():
        timers[("train.py", precision)] = loop_speed(args, precision, args.variants[0])
        for variant in args.variants[1:]:
            timers[(f"train.py {variant}", precision)] = loop_speed(args, precision, variant)
        timers[("bare model", precision)] = bare_speed(signal_config, args, device, amp_dtype)
    timers[("sdr", None)] = sdr_seconds(valid_features, signal_config, args, device)
    speeds = {key: [] for key in timers}
    for run in timers.values():
        run(args.warmup)
    for _ in range(args.rounds):
        for key, run in timers.items():
            speeds[key].append(run(args.batches))
    host = "" if device.type == "cpu" else f", the host's CPU {describe_cpu()}"  # it loads the batches
    layout = "channels_last" if memory_plan(device, args.channels_last).channels_last else "contiguous"
    print(f"{describe_device(device, None)}; {layout}, batch {args.batch_size}{host}; median of {args.rounds} "
          f"rounds of {args.batches} batches, every variant in turns")
    for precision, amp_dtype in dtypes.items():
        loop, bare = (float(np.median(speeds[(name, precision)])) for name in ("train.py", "bare model"))
        computed = "bf16 autocast" if amp_dtype is not None else "fp32"
        print(f"  --precision {precision} ({computed}): train.py {loop:6.1f} patches/s (rounds: "
              f"{', '.join(f'{v:.1f}' for v in speeds[('train.py', precision)])}), bare model {bare:6.1f} "
              f"(rounds: {', '.join(f'{v:.1f}' for v in speeds[('bare model', precision)])}), train.py / bare "
              f"{loop / bare:.0%}" + (f" (train.py {args.variants[0]})" if args.variants[0] else ""))
        for variant in args.variants[1:]:
            speed = speeds[(f"train.py {variant}", precision)]
            print(f"    train.py {variant}: {float(np.median(speed)):6.1f} patches/s (rounds: "
                  f"{', '.join(f'{v:.1f}' for v in speed)}), {float(np.median(speed)) / loop:.0%} of the first")
    sdr, valid = (float(np.median(times)) for times in zip(*speeds[("sdr", None)]))
    loop = float(np.median(speeds[("train.py", args.precisions[0])]))
    epoch = len(features) * args.samples_per_track / loop + valid
    print(f"  validation SDR of {len(valid_features)} songs: {sdr:.2f} s (rounds: "
          f"{', '.join(f'{t:.2f}' for t, _ in speeds[('sdr', None)])}), {sdr / epoch:.1%} of a default epoch of "
          f"{epoch:.1f} s ({len(features)} songs x {args.samples_per_track} patches at train.py's speed with "
          f"--precision {args.precisions[0]}, plus {valid:.2f} s of validation loss)")


if __name__ == "__main__":
    main()
