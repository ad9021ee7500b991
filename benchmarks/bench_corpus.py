"""MUSDB18 at full size: how long each command takes on a corpus of its shape, and what it costs.

    python benchmarks/bench_corpus.py build /data/corpus --fraction 0.1    # 10 + 5 songs, both layouts
    python benchmarks/bench_corpus.py measure /data/corpus/wav              # the table, for one layout
    python benchmarks/bench_corpus.py measure /data/corpus/stems

`build` writes a corpus shaped like MUSDB18 with the toy synthesiser
(toy_music.py): 100 training and 50 test songs at 44.1 kHz, stereo, each
2 to 7 minutes long (drawn from a triangular law of mode 3.5 min: about
4 minutes on average, as MUSDB18's 10 hours over 150 songs), in both of
MUSDB18's layouts: WAV folders (MUSDB18-HQ: mixture, drums, bass, other,
vocals .wav) and .stem.mp4 files (MUSDB18: the five streams in that order,
AAC at 256 kb/s, encoded by ffmpeg). `--fraction` builds that share of the
songs (the same song lengths' law); the full corpus takes about 10 GB as WAV.
It is written where you say, never in the repository.

`measure` runs the project's commands on one layout, each in a process of its
own, and times them: the first run's feature build (decoding, resampling,
STFT, cache) with --decode-jobs 1 and with the default, the cache's size,
one epoch of `train.py --n-songs all` and its peak RSS, `evaluate.py` on the
test songs with a first checkpoint and with a second one (the rows that do
not depend on the model are then cached), and `inference.py` on a folder of
the test mixtures. Each row gives seconds per minute of audio and the time
extrapolated linearly to MUSDB18 (train 100 songs, 6.3 h; test 50 songs,
3.5 h); run it on an otherwise idle machine, and name its CPU class.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MUSDB_MINUTES = {"train": 6.3 * 60, "test": 3.5 * 60}  # MUSDB18's audio, in minutes
MUSDB_SONGS = {"train": 100, "test": 50}
STREAMS = ("mixture", "drums", "bass", "other", "vocals")  # MUSDB18's order in a .stem.mp4
RATE = 44100


# --------------------------------------------------------------------------
# Building the corpus
# --------------------------------------------------------------------------

def song_lengths(n, seed):
    """Seconds of n songs, between 2 and 7 minutes, mode 3.5 (mean about 4.2)."""
    return np.random.default_rng(seed).triangular(120, 210, 420, n)


def build(out, fraction, layouts, seed):
    from audio import find_ffmpeg
    from toy_music import synth_song

    import soundfile as sf

    if "stems" in layouts and not find_ffmpeg():
        sys.exit("error: the .stem.mp4 layout needs ffmpeg (pip install -r requirements.txt brings one)")
    plan = [(subset, i) for subset in ("train", "test") for i in range(max(2, round(MUSDB_SONGS[subset] * fraction)))]
    lengths = song_lengths(len(plan), seed)
    started = time.time()
    for (subset, i), seconds in zip(plan, lengths):
        name = f"Corpus Song {subset} {i + 1:03d}"
        wav_folder = os.path.join(out, "wav", subset, name)
        stem_file = os.path.join(out, "stems", subset, f"{name}.stem.mp4")
        if os.path.isfile(os.path.join(wav_folder, "vocals.wav")) and ("stems" not in layouts or
                                                                        os.path.isfile(stem_file)):
            continue  # built by an earlier, interrupted call
        stems = synth_song(seed * 1000 + i + (0 if subset == "train" else 500), seconds, RATE)
        ints = {name: np.round(stems[name] * 32767).astype(np.int32) for name in ("vocals", "drums", "bass", "other")}
        ints["mixture"] = sum(ints.values())
        tmp = wav_folder + ".partial"
        os.makedirs(tmp, exist_ok=True)
        for stream in STREAMS:
            sf.write(os.path.join(tmp, f"{stream}.wav"), np.clip(ints[stream], -32768, 32767).astype(np.int16), RATE,
                     subtype="PCM_16")
        if "stems" in layouts:
            os.makedirs(os.path.dirname(stem_file), exist_ok=True)
            inputs = [arg for stream in STREAMS for arg in ("-i", os.path.join(tmp, f"{stream}.wav"))]
            maps = [arg for k in range(len(STREAMS)) for arg in ("-map", str(k))]
            subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, *maps, "-c:a", "aac", "-b:a", "256k",
                            stem_file + ".partial.mp4"], check=True)
            os.replace(stem_file + ".partial.mp4", stem_file)
        if "wav" in layouts:
            shutil.rmtree(wav_folder, ignore_errors=True)
            os.replace(tmp, wav_folder)
        else:
            shutil.rmtree(tmp)
        print(f"{name}: {seconds / 60:.1f} min  ({time.time() - started:.0f} s so far)", flush=True)
    with open(os.path.join(out, "corpus.json"), "w") as f:
        json.dump({"fraction": fraction, "seed": seed, "songs": len(plan), "minutes": float(lengths.sum() / 60)}, f)


# --------------------------------------------------------------------------
# Measuring the commands
# --------------------------------------------------------------------------

def run(command, env=None):
    """(seconds, peak RSS in MB) of a command, its RSS read from /proc while it runs."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=env)
    peak = 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as f:
                peak = max(peak, next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) // 1024)
        except (OSError, StopIteration):
            pass
        time.sleep(0.2)
    if process.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{process.stderr.read()[-2000:]}")
    return time.perf_counter() - started, peak


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def measure(root):
    import torch

    import data

    split = data.split_data(root, n_songs=None, quiet=True)
    minutes = {"train": sum(t.duration for t in split.train + split.valid) / 60,
               "test": sum(t.duration for t in split.test) / 60}
    python, rows = sys.executable, []

    def row(what, subset, seconds, command, extra=""):
        per_minute = seconds / minutes[subset]
        rows.append(f"| {what} | {minutes[subset]:.1f} | {seconds:.0f} | {per_minute:.2f} | "
                    f"{per_minute * MUSDB_MINUTES[subset] / 60:.0f} | {extra} | `{command}` |")
        print(rows[-1], flush=True)

    work = tempfile.mkdtemp(prefix="bench-corpus-")
    try:
        for jobs in (1, min(os.cpu_count() or 1, 4)):  # the feature build: one song at a time, then the default
            cache = os.path.join(work, f"cache{jobs}")
            code = (f"import sys; sys.path.insert(0, {ROOT!r}); import data, audio; s = data.split_data({root!r}, "
                    f"None, quiet=True); data.load_features(s.train + s.valid, audio.SignalConfig(), {cache!r}, "
                    f"quiet=True, jobs={jobs})")
            seconds, peak = run([python, "-c", code])
            row(f"feature build, --decode-jobs {jobs}", "train", seconds, f"train.py --decode-jobs {jobs} (first run)",
                f"cache {folder_bytes(cache) / 1e9:.2f} GB, peak RSS {peak} MB")
        save = os.path.join(work, "ckpt")
        command = ["train.py", "--root", root, "--n-songs", "all", "--epochs", "1", "--cache-dir", cache,
                   "--save-dir", save, "--quiet"]
        seconds, peak = run([python, *command])
        row("one epoch of train.py --n-songs all (cache ready)", "train", seconds, " ".join(command[:6]),
            f"peak RSS {peak} MB, {len(split.train)} songs")
        checkpoint = os.path.join(save, "final_model.pth")
        second = os.path.join(work, "second.pth")
        shutil.copy(checkpoint, second)
        scores = os.path.join(work, "scores")
        for name, path in (("first checkpoint", checkpoint), ("second checkpoint", second)):
            command = ["evaluate.py", "--root", root, "--checkpoint", path, "--cache-dir", scores,
                       "--out", os.path.join(work, f"{name}.json"), "--quiet"]
            seconds, peak = run([python, *command])
            row(f"evaluate.py, {name}", "test", seconds, "evaluate.py --root ROOT" + (" (again)" if "second" in name
                                                                                      else ""), f"peak RSS {peak} MB")
        mixtures = os.path.join(work, "mixtures")
        os.makedirs(mixtures)
        for track in split.test:  # MUSDB18-HQ: <song>/mixture.wav; MUSDB18: <song>.stem.mp4, whose first stream it is
            wav = track.path.endswith("mixture.wav")
            name = os.path.basename(os.path.dirname(track.path)) + ".wav" if wav else os.path.basename(track.path)
            os.symlink(track.path, os.path.join(mixtures, name))
        command = ["inference.py", mixtures, "-r", "--no-plot", "--out-dir", os.path.join(work, "out"), "--quiet"]
        seconds, peak = run([python, *command])
        row("inference.py on a folder of the test mixtures", "test", seconds, "inference.py FOLDER -r --no-plot",
            f"peak RSS {peak} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{root}: {len(split.train)} + {len(split.valid)} training and validation songs "
          f"({minutes['train']:.1f} min), {len(split.test)} test songs ({minutes['test']:.1f} min); CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores\n")
    print("| what | song-minutes | seconds | s per song-minute | MUSDB18, minutes (extrapolated) | notes | command |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the corpus")
    b.add_argument("out", help="where (outside the repository): OUT/wav and OUT/stems")
    b.add_argument("--fraction", type=float, default=1.0, help="share of MUSDB18's 100 + 50 songs to build")
    b.add_argument("--layouts", nargs="+", choices=("wav", "stems"), default=["wav", "stems"])
    b.add_argument("--seed", type=int, default=18)
    m = sub.add_parser("measure", help="time the commands on one layout")
    m.add_argument("root", help="OUT/wav or OUT/stems of `build`")
    args = p.parse_args()
    if args.command == "build":
        if os.path.abspath(args.out).startswith(ROOT + os.sep):
            sys.exit("error: write the corpus outside the repository")
        build(args.out, args.fraction, args.layouts, args.seed)
    else:
        measure(os.path.abspath(args.root))


if __name__ == "__main__":
    main()
