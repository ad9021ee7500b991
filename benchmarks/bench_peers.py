"""Time the vocal separation of one song by our U-Net and by two published peers.

In one process, on the CPU with torch's default number of threads, separates
the same generated stereo 44.1 kHz song (toy_music.synth_song, seed 0) into
vocals and accompaniment with:

    U-Net        this project: the --checkpoint if it exists, else random weights
    Open-Unmix   umxhq-shaped vocals model + 1 Wiener iteration (package openunmix)
    HT-Demucs    htdemucs-shaped 4-source model, 7.8 s chunks (package demucs)

The peers are built with random weights: the time is that of the real
networks, the audio they produce is meaningless, and nothing is downloaded.
A peer whose package is missing is skipped. Each model is warmed up once on
the first 5 s of the song, then one full separation is timed. Real-time
factor = song seconds / wall seconds (above 1: faster than real time).

    python benchmarks/bench_peers.py                    # 3-minute song
    python benchmarks/bench_peers.py --minutes 1 --json bench.json
    OMP_NUM_THREADS=1 python benchmarks/bench_peers.py   # one torch thread

On a CPU shared with other busy processes, torch's default (one thread per
core) can be many times slower than one thread, most of all for Open-Unmix's
LSTM (thousands of small parallel steps); compare both before drawing conclusions.

Peers: pip install -r benchmarks/requirements-peers.txt
"""

import argparse
import json
import os
import platform
import sys
import time
from fractions import Fraction

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from spectral import SignalConfig  # noqa: E402
from inference import load_model, separate  # noqa: E402
from toy_music import synth_song  # noqa: E402
from unet_model import UNet, UNetConfig  # noqa: E402

SAMPLE_RATE = 44100
WARMUP_SECONDS = 5
INSTALL_HINT = "pip install -r benchmarks/requirements-peers.txt"


class Method:
    """A named separator: `run(audio)` maps float32 (samples, 2) to (vocals, accompaniment)."""

    def __init__(self, name, run, parameters):
        self.name, self.run, self.parameters = name, run, parameters


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def to_tensor(audio):
    """(samples, channels) numpy -> contiguous (channels, samples) tensor."""
    return torch.from_numpy(np.ascontiguousarray(audio.T))


def to_array(signal_config):
    """(channels, samples) tensor -> (samples, channels) numpy."""
    return signal_config.T.numpy()


def our_unet(checkpoint):
    if os.path.isfile(checkpoint):
        model, signal_config = load_model(checkpoint)
        name = "U-Net (ours, trained)"
    else:
        model, signal_config = UNet(UNetConfig()).eval(), SignalConfig()
        name = "U-Net (ours, random)"
    return Method(name, lambda audio: separate(model, signal_config, audio, SAMPLE_RATE), count_parameters(model))


def open_unmix():
    """umxhq's vocals network (bidirectional 3-layer LSTM, 512 units, bins up to
    16 kHz of a 4096-point STFT) and the residual as accompaniment, refined by
    one Wiener EM iteration, as openunmix's separate() does by default."""
    from openunmix.model import OpenUnmix, Separator
    from openunmix.utils import bandwidth_to_max_bin

    vocals = OpenUnmix(nb_bins=4096 // 2 + 1, nb_channels=2, hidden_size=512,
                       max_bin=bandwidth_to_max_bin(rate=SAMPLE_RATE, n_fft=4096, bandwidth=16000))
    separator = Separator(target_models={"vocals": vocals}, niter=1, residual=True,
                          sample_rate=SAMPLE_RATE, n_fft=4096, n_hop=1024, nb_channels=2).eval()

    @torch.inference_mode()
    def run(audio):
        estimates = separator(to_tensor(audio)[None])[0]  # (vocals + residual, 2, samples)
        return to_array(estimates[0]), to_array(estimates[1])

    return Method("Open-Unmix (umxhq, random)", run, count_parameters(vocals))


def ht_demucs():
    """HT-Demucs with the released htdemucs model's settings: residual branches
    in encoder and decoder (dconv_mode=3) and a 7.8 s training segment, which
    apply_model uses as chunk length; overlap and shifts are demucs' defaults."""
    from demucs.apply import apply_model
    from demucs.htdemucs import HTDemucs

    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], samplerate=SAMPLE_RATE,
                     dconv_mode=3, segment=Fraction(39, 5)).eval()
    index = model.sources.index("vocals")

    @torch.inference_mode()
    def run(audio):
        mix = to_tensor(audio)
        stems = apply_model(model, mix[None], shifts=1, split=True, overlap=0.25)[0]  # (4, 2, samples)
        return to_array(stems[index]), to_array(mix - stems[index])

    return Method("HT-Demucs (htdemucs, random)", run, count_parameters(model))


def build_methods(checkpoint):
    """Our U-Net and every peer whose packages are installed."""
    methods = [our_unet(checkpoint)]
    for name, build in (("Open-Unmix", open_unmix), ("HT-Demucs", ht_demucs)):
        try:
            methods.append(build())
        except ModuleNotFoundError as error:
            print(f"skipping {name} ({error}); to time it: {INSTALL_HINT}")
    return methods


def time_method(method, song):
    """Seconds for one full separation of `song`, after a warm-up on its start."""
    method.run(song[:WARMUP_SECONDS * SAMPLE_RATE])
    start = time.perf_counter()
    vocals, accompaniment = method.run(song)
    seconds = time.perf_counter() - start
    for output in (vocals, accompaniment):
        if output.shape != song.shape:
            raise RuntimeError(f"{method.name} returned shape {output.shape}, expected {song.shape}")
    return seconds


def print_table(results, song_seconds):
    print(f"\nSeparation of a {song_seconds:.0f} s stereo {SAMPLE_RATE} Hz song on the CPU "
          f"(torch {torch.__version__}, threads: {torch.get_num_threads()})")
    width = max(len("method"), *(len(r["method"]) for r in results))
    print(f"{'method':<{width}}  {'seconds':>8}  {'x real time':>11}  {'parameters':>12}")
    for r in results:
        print(f"{r['method']:<{width}}  {r['seconds']:>8.2f}  {r['realtime_factor']:>11.2f}  "
              f"{r['parameters']:>12,}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the generated song (default 3)")
    parser.add_argument("--checkpoint", default=os.path.join(ROOT, "checkpoints", "best_model.pth"),
                        help="our trained model; random weights when the file does not exist "
                             "(default checkpoints/best_model.pth)")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    args = parser.parse_args()
    if args.minutes * 60 < WARMUP_SECONDS:
        parser.error(f"--minutes must give a song of at least {WARMUP_SECONDS} s")
    return args


def main():
    args = parse_args()
    methods = build_methods(args.checkpoint)
    song_seconds = args.minutes * 60
    print(f"generating a {song_seconds:.0f} s song ...", flush=True)
    song = sum(synth_song(0, song_seconds, SAMPLE_RATE).values())  # float32 (samples, 2)

    results = []
    for method in methods:
        print(f"timing {method.name} ...", flush=True)
        seconds = time_method(method, song)
        results.append({"method": method.name, "seconds": seconds,
                        "realtime_factor": song_seconds / seconds, "parameters": method.parameters})
    print_table(results, song_seconds)

    if args.json:
        report = {"song_seconds": song_seconds, "sample_rate": SAMPLE_RATE, "device": "cpu",
                  "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                  "python": platform.python_version(), "results": results}
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
