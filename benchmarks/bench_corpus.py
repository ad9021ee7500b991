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
songs (the same song lengths' law). A tenth (15 songs, 67 minutes) took 3.3 GB
as WAV and 0.56 GB as .stem.mp4, and 16 minutes to build on our 2-core AVX512 machine: the full
corpus takes about 35 + 5.5 GB. It is written where you say, never in the
repository.

`measure` runs the project's commands on one layout, each in a process of its
own, and times them with their peak memory (RSS, and its anonymous part: the
memory-mapped cache's pages count in the RSS but are the page cache's to
drop): the first run's feature build (decoding, resampling, STFT, cache) with
--decode-jobs 1 (as before it existed) and with the default; the cache's
size; one epoch of `train.py --n-songs 2` and `--n-songs all` (memory against
the number of songs; the epoch split into its training steps, which grow with
the songs, and its validation pass, which grows with their minutes);
`evaluate.py` one song at a time with nothing cached (as before --jobs and the
score cache) on a few songs, then with the defaults on every test song for a
first checkpoint and a second one (only its U-Net rows are new); and
`inference.py` on a folder of the test mixtures, then the same command again
(every song already done). Each row gives seconds per minute of audio and the
time extrapolated linearly to MUSDB18 (100 training songs, 6.3 h, of which 14
validation songs; 50 test songs, 3.5 h). The table goes to ROOT/measured.md as
it grows. Run it on an otherwise idle machine, and name its CPU class.
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
    """(seconds, peak RSS in MB, peak anonymous RSS in MB) of a command, read from /proc while it runs.

    The feature cache is memory-mapped: its pages count in the RSS but are the
    page cache's to drop; the anonymous part is what the process really holds.
    Child processes (decoding or scoring workers) are counted with their parent.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=env)
    peak = peak_anon = 0
    while process.poll() is None:
        rss = anon = 0
        for pid in [process.pid] + children(process.pid):
            try:
                with open(f"/proc/{pid}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                rss += int(fields["VmRSS"].split()[0]) // 1024
                anon += int(fields["RssAnon"].split()[0]) // 1024
            except (OSError, KeyError, ValueError):
                pass
        peak, peak_anon = max(peak, rss), max(peak_anon, anon)
        time.sleep(0.2)
    if process.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{process.stderr.read()[-2000:]}")
    return time.perf_counter() - started, peak, peak_anon


def children(pid):
    """Every descendant of pid (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        found += kids
        todo += kids
    return found


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def measure(root, out, eval_jobs_1_songs, precision):
    import csv

    import torch

    import songs
    import train
    from device import describe_cpu, describe_device, pick_device, pick_precision

    split = songs.split_data(root, n_songs=None, quiet=True)
    minutes = {"train": sum(t.duration for t in split.train + split.valid) / 60,
               "valid": sum(t.duration for t in split.valid) / 60,
               "test": sum(t.duration for t in split.test) / 60}
    # MUSDB18's minutes per part: 100 train/ songs (86 + 14 validation), 50 test songs.
    musdb = {"train": MUSDB_MINUTES["train"], "valid": MUSDB_MINUTES["train"] * 14 / 100, "test": MUSDB_MINUTES["test"],
             "songs": 86}
    python, rows = sys.executable, []
    device = pick_device()  # where train.py, run below without --cpu, trains
    header = (f"{root}: {len(split.train)} + {len(split.valid)} training and validation songs "
              f"({minutes['train']:.1f} min), {len(split.test)} test songs ({minutes['test']:.1f} min); CPU "
              f"{describe_cpu()}, {os.cpu_count()} cores, torch {torch.__version__}; training steps on "
              f"{describe_device(device, pick_precision(precision, device)).removeprefix('Device: ')} (--precision "
              f"{precision}), everything else fp32\n\n"
              "| what | audio (min) | seconds | s per audio-minute | MUSDB18 (min, extrapolated) | memory and notes "
              "| command |\n|---|---|---|---|---|---|---|")
    print(header, flush=True)

    def add(line):  # printed, and the table so far written to `out`
        rows.append(line)
        print(line, flush=True)
        with open(out, "w") as f:
            f.write(header + "\n" + "\n".join(rows) + "\n")

    def row(what, audio_minutes, seconds, musdb_minutes, command, notes=""):
        add(f"| {what} | {audio_minutes:.1f} | {seconds:.0f} | {seconds / audio_minutes:.2f} | "
            f"{seconds / audio_minutes * musdb_minutes / 60:.1f} | {notes} | `{command}` |")

    def memory(peak, anon):
        return f"peak RSS {peak} MB ({anon} MB anonymous)"

    work = tempfile.mkdtemp(prefix="bench-corpus-")
    try:
        # 1. The first run's feature build: one song at a time (as before --decode-jobs), then the default.
        for jobs in (1, min(os.cpu_count() or 1, 4)):
            cache = os.path.join(work, f"cache{jobs}")
            code = (f"import sys; sys.path.insert(0, {ROOT!r}); import data, spectral, songs; "
                    f"s = songs.split_data({root!r}, "
                    f"None, quiet=True); data.load_features(s.train + s.valid, spectral.SignalConfig(), {cache!r}, "
                    f"quiet=True, jobs={jobs})")
            seconds, peak, anon = run([python, "-c", code])
            size = folder_bytes(cache)
            row(f"feature build, --decode-jobs {jobs}", minutes["train"], seconds, musdb["train"],
                f"train.py --decode-jobs {jobs} (first run)",
                f"cache {size / 1e9:.2f} GB ({size / 1e6 / minutes['train']:.1f} MB per audio-minute); "
                f"{memory(peak, anon)}")
        # 2. One epoch, the cache ready: training scales with the songs (--samples-per-track patches each),
        #    validation with the validation songs' minutes; peak memory against the number of training songs.
        per_song = train.get_args([]).samples_per_track
        for n_songs in ("2", "all"):
            save = os.path.join(work, f"ckpt-{n_songs}")
            command = ["train.py", "--root", root, "--n-songs", n_songs, "--epochs", "1", "--cache-dir", cache,
                       "--save-dir", save, "--precision", precision, "--quiet"]
            seconds, peak, anon = run([python, *command])
            with open(os.path.join(save, "history.csv")) as f:
                epoch = next(csv.DictReader(f))
            songs = len(split.train) if n_songs == "all" else int(n_songs)
            train_seconds = songs * per_song / float(epoch["patches_per_s"])
            valid_seconds = float(epoch["seconds"]) - train_seconds
            if n_songs == "all":
                add(f"| one epoch's training, {songs} songs x {per_song} patches | - | {train_seconds:.0f} | "
                    f"{train_seconds / songs:.2f} per song | {train_seconds / songs * musdb['songs'] / 60:.1f} "
                    f"| {epoch['patches_per_s']} patches/s | `{' '.join(command[:6])}` |")
                row("one validation pass (loss and SDR)", minutes["valid"], valid_seconds, musdb["valid"],
                    "(same run)")
            add(f"| train.py --n-songs {n_songs} --epochs 1, whole process | - | {seconds:.0f} | - | - | "
                f"{songs} training songs; {memory(peak, anon)} | `{' '.join(command[:6])}` |")
        checkpoint = os.path.join(save, "final_model.pth")
        second = os.path.join(work, "second.pth")
        shutil.copy(checkpoint, second)
        # 3. evaluate.py: one song at a time with nothing cached (as before the score cache and --jobs), on a few
        #    songs; then the default on all the test songs, then a second checkpoint (only its U-Net row is new).
        runs = [("one song at a time, nothing cached", checkpoint, ["--jobs", "1", "--n-test-songs",
                                                                     str(eval_jobs_1_songs)], "jobs1"),
                ("first checkpoint", checkpoint, [], "scores"), ("second checkpoint", second, [], "scores")]
        runs = runs[0 if eval_jobs_1_songs else 1:]
        for name, path, extra, cache_name in runs:
            command = ["evaluate.py", "--root", root, "--checkpoint", path, "--cache-dir",
                       os.path.join(work, cache_name), "--out", os.path.join(work, f"{name}.json"), "--quiet", *extra]
            seconds, peak, anon = run([python, *command])
            tracks = split.test[:eval_jobs_1_songs] if extra else split.test
            audio_minutes = sum(t.duration for t in tracks) / 60
            row(f"evaluate.py, {name}", audio_minutes, seconds, musdb["test"],
                "evaluate.py --root ROOT " + " ".join(extra) + (" (again, another checkpoint)" if "second" in name
                                                                 else ""), f"{len(tracks)} songs; {memory(peak, anon)}")
        # 4. inference.py on a folder of the test mixtures, then the same command again (every song done).
        mixtures = os.path.join(work, "mixtures")
        os.makedirs(mixtures)
        for track in split.test:  # MUSDB18-HQ: <song>/mixture.wav; MUSDB18: <song>.stem.mp4, whose first stream it is
            wav = track.path.endswith("mixture.wav")
            name = os.path.basename(os.path.dirname(track.path)) + ".wav" if wav else os.path.basename(track.path)
            os.symlink(track.path, os.path.join(mixtures, name))
        command = ["inference.py", mixtures, "-r", "--no-plot", "--checkpoint", checkpoint, "--out-dir",
                   os.path.join(work, "out"), "--quiet"]
        for name in ("inference.py on a folder of the test mixtures", "the same command again (all done)"):
            seconds, peak, anon = run([python, *command])
            row(name, minutes["test"], seconds, musdb["test"], "inference.py FOLDER -r --no-plot", memory(peak, anon))
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
    m.add_argument("--out", default=None, help="markdown table written as it grows (default: ROOT/measured.md)")
    m.add_argument("--eval-jobs-1-songs", type=int, default=2,
                   help="test songs scored one at a time, nothing cached (the before row; 0: no such row)")
    m.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="train.py's --precision")
    args = p.parse_args()
    if args.command == "build":
        if os.path.abspath(args.out).startswith(ROOT + os.sep):
            sys.exit("error: write the corpus outside the repository")
        build(args.out, args.fraction, args.layouts, args.seed)
    else:
        root = os.path.abspath(args.root)
        measure(root, args.out or os.path.join(root, "measured.md"), args.eval_jobs_1_songs, args.precision)


if __name__ == "__main__":
    main()
