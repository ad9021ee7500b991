"""The feature cache: each song decoded once, its features kept on disk, and read back memory-mapped.

Decoding is the slow part of a first run (musdb's stems go through ffmpeg,
about 0.1 s a stem); a song's features (data.compute_features, passed in)
are cached under data/cache, keyed by its audio files and every signal
setting, so later runs never decode audio. The missing songs are decoded in
worker processes (workers.py), each cached as soon as it is done, so an
interrupted first run keeps them. A cache file that cannot be read back is
rebuilt, never trusted; a song that cannot be decoded (damaged, cut short,
not finite) is reported and left out.
"""

import glob
import os
import sys
import time

import numpy as np
import torch

from audio import AudioError, find_ffmpeg
from cli import progress_bar, time_left
from files import atomic_path, file_identity, keyed_name
from songs import DataError, skipped_line
from workers import each_result


_CACHE_VERSION = 1


# Audio to decode per worker process, at least: starting one costs seconds (its imports), while
# small sets decode faster in one process (benchmarks/README.md has both measured).
PARALLEL_SECONDS = 1200


def cache_path(song, signal_config, cache_dir):
    """The cache file of a song: named after it, keyed by its files and the signal settings."""
    sources = [song.path] if song.is_stem_file else [song.path, song.file("vocals")]
    files = [list(file_identity(path).values()) for path in sources]  # the key of caches already made
    key = {"files": files, "signal": signal_config.to_dict(), "version": _CACHE_VERSION}
    return os.path.join(cache_dir, keyed_name(song.name, key, ".npy"))


def cached_features(songs, signal_config, cache_dir, compute, quiet=False, jobs=1, report=print):
    """Each song's features from the cache (memory-mapped), decoding only what is missing.

    compute(mix, vocals, rate, signal_config) makes a song's features
    (data.compute_features). The missing songs are decoded `jobs` at a time,
    each in a process of its own, and each is cached as soon as it is done:
    an interrupted first run keeps them, and the next one decodes only the
    rest. A cache file that cannot be read back (empty, short, foreign) is
    rebuilt, never trusted. A song that cannot be decoded (damaged, cut
    short, not finite) is reported through `report` and gets None.
    """
    os.makedirs(cache_dir, exist_ok=True)
    features, todo = [None] * len(songs), []
    for i, song in enumerate(songs):
        path = cache_path(song, signal_config, cache_dir)
        features[i] = _read_cache(path, signal_config, report)
        if features[i] is None:
            todo.append((i, song, path, signal_config, compute))
    seconds = sum(song.duration for _, song, _, _, _ in todo)
    workers = min(jobs, len(todo), max(1, int(seconds // PARALLEL_SECONDS)))  # each worker costs a start-up
    started = time.time()

    def died(death):
        return DataError(f"the process decoding {death.job[1].location} died (exit code {death.exitcode}; memory "
                         "may be short): run again with --decode-jobs 1; the songs decoded so far are kept")

    try:
        with each_result(_cache_song, todo, workers, _start_decoder, size=lambda job: job[1].duration,
                         died=died) as done:
            for count, (job, reason) in enumerate(_progress(done, "decoding audio (once)", quiet, len(todo)), 1):
                i, song, path = job[:3]
                if reason:
                    report(skipped_line(song.location, reason))
                else:
                    features[i] = _read_cache(path, signal_config, report)
                if not quiet and len(todo) > 3 and not sys.stderr.isatty():  # a log file: a line per song
                    print(f"decoded {count}/{len(todo)} songs (once)"
                          + time_left(count, len(todo), time.time() - started), flush=True)
    finally:
        for tmp in glob.glob(os.path.join(cache_dir, ".tmp-*")):  # what stopped workers were writing
            if os.path.getmtime(tmp) >= started - 1:
                os.unlink(tmp)
    return features


def _start_decoder():
    """A decoding worker: one core per song."""
    torch.set_num_threads(1)
    find_ffmpeg()


def _cache_song(job):
    """Decode one song and write its cache file; None, or why the song cannot be used."""
    _, song, path, signal_config, compute = job
    try:
        mix, vocals = song.read("mixture"), song.read("vocals")
    except AudioError as err:
        return str(err)
    n = min(len(mix), len(vocals))
    if n < 0.95 * song.frames - song.rate:  # the header promised more
        return f"it ends at {n / song.rate:.1f} s although its header says {song.duration:.1f} s: the file is cut " \
               "short; download it again"
    for stem, audio in (("mixture", mix), ("vocals", vocals)):
        if not np.isfinite(audio).all():
            return f"its {stem} holds NaN or infinite samples"
    _write_cache(path, compute(mix[:n], vocals[:n], song.rate, signal_config))
    return None


def _read_cache(path, signal_config, report=print):
    if not os.path.exists(path):
        return None
    try:
        array = np.load(path, mmap_mode="r")
        if array.dtype == np.complex64 and array.ndim == 3 and array.shape[:2] == (2, signal_config.freq_bins) \
                and array.shape[2] > 0:
            return array
    except Exception:  # empty (EOFError), short (ValueError), foreign: never trusted
        pass
    report(f"Cache file {path} is damaged; rebuilding it.")
    return None


def _write_cache(path, array):
    with atomic_path(path, size=array.nbytes) as tmp:
        np.save(tmp, array)


def _progress(items, desc, quiet, total=None):
    total = len(items) if total is None else total
    return progress_bar(items, quiet or total == 0, desc=desc, unit="track", total=total)
