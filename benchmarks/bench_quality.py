"""How well does the U-Net separate music it has never seen? BSS Eval over seeds and test sets.

    python benchmarks/bench_quality.py --checkpoint checkpoints/best_model.pth
    python benchmarks/bench_quality.py --seeds 42 43 44          # train the default recipe once per seed first
    python benchmarks/bench_quality.py --seeds 42 43 44 --sweep  # the reconstruction's choices, on validation songs
    python benchmarks/bench_quality.py --checkpoint runs/*/best_model.pth --sweep --only "network input" \
        --sets valid toy real other                               # one choice, then confirmed on the test sets

Three test sets, none of them used for training or for choosing defaults:

    toy     the toy set's 3 test songs (same synthesiser as the training songs)
    real    the 6-second MUSDB18 excerpt that ships with stempeg (real music)
    other   6 songs of benchmarks/other_music.py, a second synthesiser made
            independently of the first (other voice model, instruments, mixing
            and effects, 44.1 kHz): generalization, not memorization of
            toy_music.py

For every model (one per seed) it scores the U-Net with the lab's 8192 Hz
reconstruction and with the full-band one; and
once, the mixture (the floor) and the oracle masks (the ceilings). Vocals
SDR/SIR/SAR in dB, museval's BSS Eval v4 (1 s windows), median over windows
then over the songs of a set, as evaluate.py reports them; then the mean and
the spread (min..max) over seeds.

--sweep instead compares the full-band reconstruction's settings (synthesis
window and overlap, the mask above 4096 Hz, the network's
input: the whole song or overlapping patches) on the toy validation songs,
which are held out from training but are not a test set: that is where
defaults are chosen. It adds "HF SNR": the whole-song SNR of the vocals
above 4096 Hz, which BSS Eval's SDR barely sees.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

METRICS = ("SDR", "SIR", "SAR")
OTHER_SEED = 90210  # other_music.build_set's: the other synthesiser's set of every figure before 2026-12-07
# What a model is scored with: (name, SeparationOptions arguments).
MODEL_METHODS = [
    ("U-Net, lab 8 kHz", {"reconstruction": "lab"}),
    ("U-Net, full band", {"reconstruction": "full"}),
]
ORACLE_METHODS = ("mixture", "oracle 8 kHz, lab", "oracle 8 kHz, full", "oracle full")
# --sweep: (name, separation.py settings to change, SeparationOptions arguments).
SWEEP = [
    ("lab 8 kHz", {}, {"reconstruction": "lab"}),
    ("full, window 1024@44.1k", {"SYNTHESIS_SECONDS": 1024 / 44100}, {}),
    ("full, window 2048@44.1k", {"SYNTHESIS_SECONDS": 2048 / 44100}, {}),
    ("full, window 4096@44.1k", {"SYNTHESIS_SECONDS": 4096 / 44100}, {}),
    ("full, window 8192@44.1k", {"SYNTHESIS_SECONDS": 8192 / 44100}, {}),
    ("full, synthesis overlap 2 (hop 1/2)", {"SYNTHESIS_OVERLAP": 2}, {}),
    ("full, synthesis overlap 4 (hop 1/4)", {"SYNTHESIS_OVERLAP": 4}, {}),
    ("full, synthesis overlap 8 (hop 1/8)", {"SYNTHESIS_OVERLAP": 8}, {}),
    ("full, above 4 kHz: zero", {"HIGH_BAND_HZ": None}, {}),
    ("full, above 4 kHz: mean 3-4 kHz", {"HIGH_BAND_HZ": (3000, 4096)}, {}),
    ("full, above 4 kHz: mean 0-4 kHz", {"HIGH_BAND_HZ": (0, 4096)}, {}),
    ("full, network input: whole song", {}, {"network_input": "whole"}),
    ("full, network input: patches, overlap 0", {"OVERLAP": 0.0}, {"network_input": "patches"}),
    ("full, network input: patches, overlap 1/4", {"OVERLAP": 0.25}, {"network_input": "patches"}),
    ("full, network input: patches, overlap 1/2", {"OVERLAP": 0.5}, {"network_input": "patches"}),
]


# --------------------------------------------------------------------------
# Test sets
# --------------------------------------------------------------------------

def load_tracks(found):
    """[(name, rate, mix, vocals, accompaniment)] as float32 (samples, channels), read once, of songs.Song's."""
    loaded = []
    for song in found:
        mix, vocals, accompaniment = (song.read(stem) for stem in ("mixture", "vocals", "accompaniment"))
        n = min(len(mix), len(vocals), len(accompaniment))
        loaded.append((song.name, song.rate, mix[:n], vocals[:n], accompaniment[:n]))
    return loaded


def test_songs(root):
    """The checked songs under root/test (songs.find_songs)."""
    import songs

    return songs.find_songs(root, subsets=("test",), quiet=True)[1]


def test_sets(names, workdir, toy_root=None, other_seed=OTHER_SEED):
    """{set name: songs} for the names asked ('toy', 'real', 'other', 'valid'): the toy songs of `toy_root`
    (default: the toy set of this version, built if needed), the other synthesiser's set of `other_seed`."""
    import songs

    sets = {}
    toy_root = toy_root or songs.ensure_toy_musdb()
    if "toy" in names:
        sets["toy"] = load_tracks(test_songs(toy_root))
    if "valid" in names:
        sets["valid"] = load_tracks(songs.split_data(toy_root, n_songs=None, quiet=True).valid)
    if "real" in names:
        import importlib.util

        folder = os.path.join(importlib.util.find_spec("stempeg").submodule_search_locations[0], "data")
        stem = next(name for name in sorted(os.listdir(folder)) if name.endswith(".stem.mp4"))
        os.makedirs(os.path.join(workdir, "real", "test"), exist_ok=True)
        link = os.path.join(workdir, "real", "test", stem)
        if not os.path.exists(link):
            os.symlink(os.path.join(folder, stem), link)
        sets["real"] = load_tracks(test_songs(os.path.join(workdir, "real")))
    if "other" in names:
        from other_music import build_set

        other_root = build_set(os.path.join(songs.PROJECT_DIR, "data", "other_music" + (
            "" if other_seed == OTHER_SEED else f"_{other_seed}")), seed=other_seed)
        sets["other"] = load_tracks(test_songs(other_root))
    return sets


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------

def high_band_snr(reference, estimate, rate, cutoff=4096.0):
    """Whole-song SNR in dB of the part of the vocals above `cutoff` Hz (NaN if there is none)."""
    from scipy.signal import butter, sosfiltfilt

    if rate <= 2 * cutoff:
        return float("nan")
    sos = butter(8, cutoff, "highpass", fs=rate, output="sos")
    ref, est = sosfiltfilt(sos, reference, axis=0), sosfiltfilt(sos, estimate, axis=0)
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - est) ** 2), 1e-20)))


def score(song, estimate, with_high_band=False):
    """{metric: dB} of the vocals of one estimate (vocals, accompaniment) of one song."""
    from evaluate import bss_eval

    name, rate, mix, vocals, accompaniment = song
    scores = dict(bss_eval((vocals, accompaniment), estimate, rate)["vocals"])
    if with_high_band:
        scores["HF SNR"] = high_band_snr(vocals, estimate[0], rate)
    return scores


def oracle_estimates(song, signal_config):
    """{method: (vocals, accompaniment)} of the methods that need no model."""
    from evaluate import oracle_full_band, oracle_model_band

    name, rate, mix, vocals, accompaniment = song
    return {"mixture": (mix, mix),
            "oracle 8 kHz, lab": oracle_model_band(mix, vocals, accompaniment, rate, signal_config, "lab"),
            "oracle 8 kHz, full": oracle_model_band(mix, vocals, accompaniment, rate, signal_config, "full"),
            "oracle full": oracle_full_band(mix, vocals, accompaniment, rate)}


def set_separation(settings):
    """Change separation.py's module settings (a sweep row); returns the old values."""
    import separation

    old = {}
    for key, value in settings.items():
        if key == "HIGH_BAND_HZ" and value is None:  # "zero above 4096 Hz": wrap interpolate_mask
            old["interpolate_mask"] = separation.interpolate_mask
            separation.interpolate_mask = zero_above_model_band(old["interpolate_mask"])
            continue
        old[key] = getattr(separation, key)
        setattr(separation, key, value)
    return old


def zero_above_model_band(interpolate_mask):
    def wrapped(mask, mask_config, synthesis, frames, offset=0):
        out = interpolate_mask(mask, mask_config, synthesis, frames, offset)
        hz = np.arange(out.shape[0]) * synthesis.sample_rate / synthesis.n_fft
        out[hz > mask_config.sample_rate / 2] = 0
        return out
    return wrapped


def set_labels(sets, toy_root=None, other_seed=OTHER_SEED):
    """{set name: a label that tells which songs it holds}: the toy set's version, the other set's seed."""
    import songs

    with open(os.path.join(toy_root or songs.ensure_toy_musdb(), "toy.json")) as f:
        version = json.load(f)["version"]
    names = {"toy": f"toy v{version}", "valid": f"valid v{version}", "other": f"other {other_seed}"}
    return {name: names.get(name, name) for name in sets}


def add_set_flags(parser):
    """--toy-root and --other-seed: the test sets of another toy set's version, or a fresh other set."""
    parser.add_argument("--toy-root", default=None, help="score on the test songs of this toy set (default: "
                        "this version's, built if needed); it is read as it is, never rebuilt")
    parser.add_argument("--other-seed", type=int, default=OTHER_SEED,
                        help=f"seed of the other synthesiser's set (default {OTHER_SEED}; another seed builds "
                             "another set, one that chose nothing)")


def score_models(checkpoints, sets, methods, with_high_band=False, quiet=False):
    """{method: {set: [per-model median over songs of {metric: dB}]}} and {method: seconds per song-minute}."""
    import separation
    from checkpoints import load_model
    from metrics import finite_median

    results, seconds = {}, {}
    for checkpoint in checkpoints:
        model, signal_config = load_model(checkpoint)
        for method, settings, kwargs in methods:
            old = set_separation(settings)
            try:
                for set_name, songs in sets.items():
                    per_song = []
                    for song in songs:
                        start = time.perf_counter()
                        estimate = separation.separate(model, signal_config, song[2], song[1],
                                                       separation.SeparationOptions(**kwargs))
                        elapsed = time.perf_counter() - start
                        seconds.setdefault(method, []).append(elapsed / (len(song[2]) / song[1] / 60))
                        per_song.append(score(song, estimate, with_high_band))
                    summary = {m: finite_median([s[m] for s in per_song]) for m in per_song[0]}
                    results.setdefault(method, {}).setdefault(set_name, []).append(summary)
                    if not quiet:
                        print(f"{os.path.relpath(checkpoint, ROOT)}  {method:32} {set_name:6} "
                              + "  ".join(f"{m} {v:6.2f}" for m, v in summary.items()), flush=True)
            finally:
                set_separation(old)
    return results, {m: float(np.median(v)) for m, v in seconds.items()}


def score_oracles(sets, signal_config, with_high_band=False):
    from metrics import finite_median

    results = {}
    for set_name, songs in sets.items():
        per_song = [{method: score(song, estimate, with_high_band)
                     for method, estimate in oracle_estimates(song, signal_config).items()} for song in songs]
        for method in ORACLE_METHODS:
            summary = {m: finite_median([s[method][m] for s in per_song]) for m in per_song[0][method]}
            results.setdefault(method, {})[set_name] = [summary]
    return results


# --------------------------------------------------------------------------
# Training one model per seed
# --------------------------------------------------------------------------

def train_seeds(seeds, runs_dir, train_args):
    """best_model.pth of `python train.py --seed S ...` for each seed, trained unless already there."""
    checkpoints = []
    for seed in seeds:
        save_dir = os.path.join(runs_dir, f"seed{seed}")
        best = os.path.join(save_dir, "best_model.pth")
        if not os.path.isfile(os.path.join(save_dir, "final_model.pth")):
            command = [sys.executable, os.path.join(ROOT, "train.py"), "--seed", str(seed),
                       "--save-dir", save_dir, "--quiet"] + train_args
            print("Training:", " ".join(command), flush=True)
            start = time.perf_counter()
            subprocess.run(command, check=True, cwd=ROOT)
            print(f"  {time.perf_counter() - start:.0f} s", flush=True)
        checkpoints.append(best)
    return checkpoints


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def cell(values, metric):
    """'mean (min..max)' over models, or the single value."""
    numbers = [v[metric] for v in values]
    if len(numbers) == 1:
        return f"{numbers[0]:.2f}"
    return f"{np.mean(numbers):.2f} ({min(numbers):.2f}..{max(numbers):.2f})"


def table(results, set_names, metrics, seconds=None):
    """A Markdown table: one row per method, one column per set and metric."""
    header = ["method"] + [f"{s} {m}" for s in set_names for m in metrics]
    if seconds:
        header.append("s per song-minute")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, per_set in results.items():
        row = [method] + [cell(per_set[s], m) if s in per_set else "" for s in set_names for m in metrics]
        if seconds:
            row.append(f"{seconds[method]:.2f}" if method in seconds else "")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", nargs="+", default=None, help="models to score (one per seed)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="train `python train.py --seed S` for each seed (unless RUNS_DIR/seedS is done), then score")
    p.add_argument("--runs-dir", default=os.path.join(ROOT, "runs", "quality"), help="where --seeds trains")
    p.add_argument("--train-args", nargs=argparse.REMAINDER, default=[],
                   help="more train.py flags for --seeds (must come last)")
    p.add_argument("--sets", nargs="+", default=None, choices=["toy", "real", "other", "valid"],
                   help="sets to score (default: toy real other; with --sweep, valid: the test sets then only "
                        "confirm a choice made on the validation songs)")
    p.add_argument("--sweep", action="store_true",
                   help="compare the reconstruction's settings on the toy validation songs instead")
    p.add_argument("--only", default=None, metavar="TEXT",
                   help="with --sweep: only the settings whose name contains TEXT (e.g. 'network input')")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--quiet", action="store_true", help="print only the tables")
    add_set_flags(p)
    args = p.parse_args()
    if bool(args.checkpoint) == bool(args.seeds):
        p.error("give either --checkpoint or --seeds")

    import torch

    from audio import SignalConfig

    capability = torch.backends.cpu.get_cpu_capability()
    checkpoints = args.checkpoint or train_seeds(args.seeds, args.runs_dir, args.train_args)
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as workdir:
        sets = test_sets(args.sets or (["valid"] if args.sweep else ["toy", "real", "other"]), workdir,
                         args.toy_root, args.other_seed)
        if args.sweep:
            sweep = [row for row in SWEEP if args.only is None or args.only in row[0]]
            results, seconds = score_models(checkpoints, sets, sweep, with_high_band=True, quiet=args.quiet)
            metrics = METRICS + ("HF SNR",)
        else:
            methods = [(name, {}, kwargs) for name, kwargs in MODEL_METHODS]
            results, seconds = score_models(checkpoints, sets, methods, quiet=args.quiet)
            results.update(score_oracles(sets, SignalConfig()))
            metrics = METRICS
    labels = set_labels(sets, args.toy_root, args.other_seed)
    sets = {labels[name]: songs for name, songs in sets.items()}
    results = {method: {labels[name]: v for name, v in per_set.items()} for method, per_set in results.items()}
    set_names = list(sets)
    print(f"\nVocals, dB: median over songs, then mean (min..max) over {len(checkpoints)} model(s); "
          f"songs per set: " + ", ".join(f"{s} {len(sets[s])}" for s in set_names)
          + f". CPU capability {capability}, {torch.get_num_threads()} threads.")
    print(table(results, set_names, metrics, seconds))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoints": checkpoints, "sets": {s: [song[0] for song in sets[s]] for s in set_names},
                       "cpu_capability": capability, "results": results, "seconds_per_song_minute": seconds},
                      f, indent=2)


if __name__ == "__main__":
    main()
