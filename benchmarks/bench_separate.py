"""How fast does a song separate, stage by stage, and how much memory does it take?

    python benchmarks/bench_separate.py                      # 3 and 10 minutes, stages + command
    python benchmarks/bench_separate.py --minutes 3 10 60    # adds the 60-minute memory check
    python benchmarks/bench_separate.py --variants full lab full+patches   # in one run

For each length it writes a generated stereo 44.1 kHz song (toy_music, the
same synthesiser as the toy data set) to a temporary WAV, then separates it in
a fresh Python process through inference.separate_file(), the code path that
`python inference.py` runs, from the file on disk to the two written WAVs.
The stages are timed by wrapping the functions that path calls (nothing in
inference.py or separation.py is changed for the benchmark); the child reports its peak RSS.
Each song goes through every variant asked for (`full`, the default;
`lab`, the lab's 8192 Hz reconstruction; `full+patches`, the network reading 128-frame patches that overlap
by half instead of the whole song), one after the other on the same song, so
that they are compared in one run. Once
per run, the 3-minute song also goes through the whole command
`python inference.py --no-plot song.wav` (cold start included).

The checkpoint is --checkpoint if it exists, else an untrained model of the
default size: the network's speed does not depend on its weights.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RATE = 44100


def write_song(path, minutes, seed=1):
    """A stereo 44.1 kHz mix of `minutes`, written 1 minute at a time (bounded memory)."""
    import soundfile as sf

    from toy_music import synth_song

    minute = sum(synth_song(seed, 60.0, RATE).values())[: 60 * RATE]  # (samples, 2)
    peak = np.abs(minute).max()
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16") as f:
        for i in range(int(np.ceil(minutes))):
            length = min(60.0, (minutes - i) * 60)
            f.write(0.9 * np.roll(minute, i * 7919, axis=0)[: int(length * RATE)] / peak)


def default_checkpoint(path):
    """An untrained default-size checkpoint, for machines with no trained model yet."""
    from spectral import SignalConfig
    from checkpoints import build_checkpoint, save_checkpoint
    from unet_model import UNet, UNetConfig

    config = UNetConfig()
    save_checkpoint(path, build_checkpoint(UNet(config), config, SignalConfig(), epoch=0))


VARIANTS = {"full": {"reconstruction": "full"}, "lab": {"reconstruction": "lab"},
            "full+patches": {"reconstruction": "full", "network_input": "patches"}}  # SeparationOptions


def child(song, checkpoint, out_dir, variant):
    """Separate one song in this process, timing each stage; print a JSON line."""
    import soundfile as sf
    import torch

    import spectral
    import inference
    import separation

    times = {}

    def timed(stage, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            times[stage] = times.get(stage, 0.0) + time.perf_counter() - start
            return result
        return wrapper

    # Each stage is timed where the code that runs it looks its function up.
    signal_rate = 8192
    resample = spectral.resample
    separation.resample = lambda x, rate_in, rate_out: timed(
        "resample back" if rate_in == signal_rate else "resample", resample)(x, rate_in, rate_out)
    separation.stft = timed("STFT", separation.stft)
    separation.istft = timed("ISTFT", separation.istft)
    separation.compute_mask = timed("network", separation.compute_mask)
    separation.interpolate_mask = timed("mask to full rate", separation.interpolate_mask)
    separation.istft_of_masked_stft = timed("full-rate synthesis", separation.istft_of_masked_stft)
    inference.read_block = timed("read", inference.read_block)
    write, close = sf.SoundFile.write, sf.SoundFile.close  # only the outputs are written
    sf.SoundFile.write = lambda self, x: timed("write", write)(self, x)
    sf.SoundFile.close = lambda self: timed("write", close)(self)

    model, signal_config = inference.load_model(checkpoint)
    inputs = []  # the shape of every network input, (B, F, T), to replay on the bare model
    forward = model.forward

    def counted(x):
        inputs.append(tuple(x.shape))
        return forward(x)

    model.forward = counted
    warm = np.zeros((RATE * 5, 2), np.float32)
    options = separation.SeparationOptions(**VARIANTS[variant])
    separation.separate(model, signal_config, warm, RATE, options)  # the first call pays one-time costs
    times.clear()
    inputs.clear()
    start = time.perf_counter()
    inference.separate_file(model, signal_config, song, out_dir, options, plot=False, quiet=True)
    total = time.perf_counter() - start
    seconds = sf.info(song).duration
    bare = bare_model_seconds(forward, inputs)
    frames = sum(b * t for b, _, t in inputs)
    print(json.dumps({"seconds": seconds, "total": total, "stages": times, "threads": torch.get_num_threads(),
                      "passes": len(inputs), "frames": frames, "bare_network": bare,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def bare_model_seconds(forward, shapes):
    """Seconds of the bare model on random inputs of the shapes the network stage ran, after a warm-up."""
    import torch

    inputs = [torch.rand(shape) for shape in shapes]
    with torch.inference_mode():
        forward(inputs[0])
        start = time.perf_counter()
        for x in inputs:
            forward(x)
    return time.perf_counter() - start


def run_child(song, checkpoint, out_dir, variant):
    out = subprocess.run([sys.executable, __file__, "--child", song, checkpoint, out_dir, variant],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_command(song, checkpoint, out_dir):
    start = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(ROOT, "inference.py"), "--no-plot", "--quiet",
                    "--checkpoint", checkpoint, "--out-dir", out_dir, song], check=True, cwd=ROOT)
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[3, 10], help="song lengths to separate")
    p.add_argument("--checkpoint", default=os.path.join(ROOT, "checkpoints", "best_model.pth"),
                   help="model to use (an untrained default-size one if missing)")
    p.add_argument("--variants", nargs="+", default=["full", "lab"], choices=list(VARIANTS),
                   help="variants to time on each song (the command is timed with the default, full)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(*args.child)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-separate-") as tmp:
        checkpoint = args.checkpoint
        if not os.path.isfile(checkpoint):
            checkpoint = os.path.join(tmp, "untrained.pth")
            default_checkpoint(checkpoint)
            print(f"No {args.checkpoint}: timing an untrained default-size model.")
        for minutes in args.minutes:
            song = os.path.join(tmp, f"song_{minutes:g}min.wav")
            write_song(song, minutes)
            for variant in args.variants:
                result = run_child(song, checkpoint, os.path.join(tmp, "out"), variant)
                result.update(minutes=minutes, variant=variant)
                if minutes == args.minutes[0] and variant == "full":
                    result["command"] = run_command(song, checkpoint, os.path.join(tmp, "out_command"))
                results.append(result)
            os.unlink(song)

    stages = ["read", "resample", "STFT", "network", "mask to full rate", "full-rate synthesis", "ISTFT",
              "resample back", "write"]
    print(f"\n{'song':>6} {'variant':>12} " + " ".join(f"{s[:11]:>11}" for s in stages)
          + f" {'total':>7} {'x real time':>11} {'peak RSS':>9}")
    for r in results:
        cells = " ".join(f"{r['stages'].get(s, 0.0):>10.2f}s" for s in stages)
        print(f"{r['minutes']:>4g} m {r['variant']:>12} " + cells
              + f" {r['total']:>6.2f}s {r['seconds'] / r['total']:>10.0f}x {r['peak_rss_mb']:>6.0f} MB")
        print(f"{'':>8} network stage {r['passes']} pass(es), {r['frames']} frames in "
              f"{r['stages'].get('network', 0):.2f} s; the bare model on the same inputs: {r['bare_network']:.2f} s "
              f"({r['bare_network'] / r['stages'].get('network', 1):.0%} of its speed reached)")
        if "command" in r:
            print(f"{'':>8} whole command `python inference.py --no-plot` (cold start): "
                  f"{r['command']:.2f} s, {r['seconds'] / r['command']:.0f}x real time")
    import torch

    print(f"({results[0]['threads']} torch threads, {os.cpu_count()} CPUs, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
