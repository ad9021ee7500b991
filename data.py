"""MUSDB18 data for the U-Net: songs, splits, cached spectrograms and patches.

    python data.py                      # summary of the data train.py would use
    python data.py --root ~/MUSDB18     # the same for a MUSDB18 / MUSDB18-HQ folder

Where the data comes from, in order: `--root`, the MUSDB_PATH environment
variable (musdb's own convention), else a small generated toy set in the
MUSDB18-HQ layout, built once under data/toy_musdb and read through the very
same musdb path as real data.

Each track is decoded once: its mono 8192 Hz STFT (vocals and accompaniment,
scaled so that the mix peaks at 1) is cached under data/cache, keyed by the
audio files and every signal setting, so later runs never decode audio.
"""

import glob
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from audio import NO_FFMPEG, AudioError, SignalConfig, find_ffmpeg, magnitude_scale, read_audio, resample, stft, to_mono
from cli import (DEFAULT_N_SONGS, ArgumentParser, UserError, add_root_flag, add_training_songs_flag, progress_bar,
                 time_left)
from files import atomic_path, disk_full_error, file_identity, keyed_name, make_readable

PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TOY_ROOT = os.path.join(PROJECT_DIR, "data", "toy_musdb")
DEFAULT_CACHE_DIR = os.path.join(PROJECT_DIR, "data", "cache")

# The toy set: 13 training songs (3 of them held out for validation) and 3
# test songs of 35 s, stereo 16-bit at 16 kHz: about 180 MB, built in seconds.
TOY_SETTINGS = {"version": 1, "n_train": 13, "n_test": 3, "seconds": 35.0,
                "sample_rate": 16000, "seed": 2017}
STEMS = ("vocals", "drums", "bass", "other")
CACHE_VERSION = 1
# Audio to decode per worker process, at least: starting one takes 3-4 s (AVX2), while the toy set's
# 7.6 minutes of 16 kHz WAV decode in 0.3 s (benchmarks/README.md), so small sets decode in one process.
PARALLEL_SECONDS = 1200


class DataError(UserError):
    """A problem with the data: a missing folder, a damaged or truncated track."""


# --------------------------------------------------------------------------
# The toy data set
# --------------------------------------------------------------------------

def build_toy_musdb(root, settings=TOY_SETTINGS, quiet=False):
    """Write the toy set in the MUSDB18-HQ layout: root/{train,test}/<song>/<stem>.wav.

    Stems are quantised to 16 bits first and the mixture is their integer
    sum, so mixture.wav is exactly vocals + drums + bass + other as read back.
    The set is written to a temporary folder and renamed at the end, so an
    interrupted build never leaves a half-made set that looks complete.
    """
    from toy_music import synth_song  # only when the set is built: its import takes 1.3-1.6 s (scipy.signal)

    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".toy_musdb-", dir=parent)
    songs = [("train", i) for i in range(settings["n_train"])]
    songs += [("test", i) for i in range(settings["n_test"])]
    start = time.time()
    try:
        for subset, i in _progress(songs, "building toy set", quiet):
            seed = settings["seed"] * 1000 + (0 if subset == "train" else 500) + i
            stems = synth_song(seed, settings["seconds"], settings["sample_rate"])
            folder = os.path.join(tmp, subset, f"Toy Song {subset} {i + 1:02d}")
            os.makedirs(folder)
            ints = {name: np.round(stems[name] * 32767).astype(np.int32) for name in STEMS}
            ints["mixture"] = sum(ints[name] for name in STEMS)
            for name, x in ints.items():
                x = np.clip(x, -32768, 32767).astype(np.int16)
                sf.write(os.path.join(folder, f"{name}.wav"), x, settings["sample_rate"], subtype="PCM_16")
        with open(os.path.join(tmp, "toy.json"), "w") as f:
            json.dump(settings, f, indent=2)
        if os.path.exists(root):
            shutil.rmtree(root)
        make_readable(tmp, 0o777)  # mkdtemp makes it private
        os.replace(tmp, root)
    except BaseException as err:
        size = len(songs) * (len(STEMS) + 1) * settings["seconds"] * settings["sample_rate"] * 2 * 2  # 16-bit stereo
        full = disk_full_error(err, root, size)  # before the half-built set's space is given back
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise full from err
        raise
    if not quiet:
        print(f"Built the toy data set in {time.time() - start:.1f} s: {root}")


def ensure_toy_musdb(root=DEFAULT_TOY_ROOT, quiet=False):
    """Build the toy set unless a complete one with the same settings is there."""
    marker = os.path.join(root, "toy.json")
    try:
        with open(marker) as f:
            if json.load(f) == TOY_SETTINGS:
                return root
    except (OSError, ValueError):
        pass
    build_toy_musdb(root, quiet=quiet)
    return root


# --------------------------------------------------------------------------
# Finding the songs and splitting them
# --------------------------------------------------------------------------

@dataclass
class DataSplit:
    """The songs one run uses, as musdb tracks, and where they came from."""

    root: str
    source: str  # "toy", "MUSDB18" (stems) or "MUSDB18-HQ" (WAV)
    is_wav: bool
    train: list
    valid: list
    test: list
    notes: list = field(default_factory=list)


def toy_note(root):
    return (f"Using the generated toy data set in {root}; for real music point --root "
            "(or MUSDB_PATH) at MUSDB18 or MUSDB18-HQ.")


def resolve_root(root=None, quiet=False):
    """Return (root, is_toy): --root, else MUSDB_PATH, else the toy set (built if needed)."""
    if root:
        return os.path.abspath(os.path.expanduser(root)), False
    if os.environ.get("MUSDB_PATH"):
        return os.path.abspath(os.path.expanduser(os.environ["MUSDB_PATH"])), False
    return ensure_toy_musdb(quiet=quiet), True


def detect_layout(root):
    """{subset: True for WAV folders (MUSDB18-HQ), False for .stem.mp4 files (MUSDB18)}.

    Each of train/ and test/ is looked at on its own, so a folder may hold WAV
    songs under train/ and stems under test/; a subset holding both kinds is
    refused (musdb reads one kind at a time, and would silently skip the other).
    """
    if not os.path.isdir(root):
        raise DataError(
            f"data root {root} does not exist: point --root (or MUSDB_PATH) at a MUSDB18 folder "
            "that holds train/ and test/, or set neither to use the toy set"
        )
    subsets = [s for s in ("train", "test") if os.path.isdir(os.path.join(root, s))]
    if not subsets and any(_song_kinds(root)):
        parent = os.path.dirname(os.path.abspath(root))
        raise DataError(f"{root} holds songs itself: it looks like the train/ or test/ folder of a MUSDB18 "
                        f"folder; point --root one level up, at {parent}")
    if not subsets:
        raise DataError(
            f"{root} is not a MUSDB18 folder: it has no train/ or test/ subfolder "
            "(expected root/train/<song>.stem.mp4 or root/train/<song>/mixture.wav)"
        )
    layouts = {}
    for subset in subsets:
        folder = os.path.join(root, subset)
        has_stems, has_wav = _song_kinds(folder)
        if has_stems and has_wav:
            raise DataError(f"{folder} holds both .stem.mp4 files and WAV song folders: keep one kind "
                            "per subset folder (musdb reads one kind at a time)")
        if has_stems or has_wav:
            layouts[subset] = has_wav
    if not layouts:
        raise DataError(
            f"{root} holds no MUSDB tracks: expected <song>.stem.mp4 files or <song>/mixture.wav "
            "folders under train/ or test/"
        )
    return layouts


def _song_kinds(folder):
    """(holds .stem.mp4 files, holds <song>/mixture.wav folders): the MUSDB songs right in `folder`."""
    entries = os.listdir(folder)
    return (any(e.endswith(".stem.mp4") for e in entries),
            any(os.path.isfile(os.path.join(folder, e, "mixture.wav")) for e in entries))


def _musdb_tracks(root, is_wav, subset, split=None):
    # musdb imports stempeg, which refuses to load without ffmpeg and ffprobe, WAV data included:
    # imported here, once find_ffmpeg has put them on PATH (at the top, WAV songs could not be
    # separated on a machine without ffmpeg).
    if not find_ffmpeg():
        raise DataError(f"ffmpeg is needed to read MUSDB data (musdb calls it, even for WAV folders), but {NO_FFMPEG}")
    import musdb

    try:
        db = musdb.DB(root=root, subsets=subset, split=split, is_wav=is_wav)
    except Exception as err:  # musdb probes every file with ffprobe on load, without naming it
        culprit = _unreadable_file(os.path.join(root, subset), is_wav)
        if culprit:
            raise DataError(f"{culprit} is damaged or not audio: replace it, or move it out of {root}") from err
        raise DataError(f"musdb could not read the {subset} tracks in {root}: {err}") from err
    return list(db.tracks)


def _unreadable_file(folder, is_wav):
    """The first audio file under a MUSDB subset folder that cannot be probed, or None."""
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if is_wav and os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith(".wav"):
                    try:
                        if sf.info(os.path.join(path, name)).frames == 0:
                            return os.path.join(path, name)
                    except (sf.LibsndfileError, RuntimeError):
                        return os.path.join(path, name)
        elif not is_wav and entry.endswith(".stem.mp4"):
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                    path], capture_output=True, text=True)
            if probe.returncode != 0 or not probe.stdout.strip():
                return path
    return None


def find_tracks(root=None, subsets=("test", "train"), quiet=False):
    """(root, tracks) of the data in use, test songs first: for inference and evaluation."""
    root, is_toy = resolve_root(root, quiet=quiet)
    layouts = detect_layout(root)
    if is_toy and not quiet:
        print(toy_note(root))
    tracks = []
    for subset in subsets:
        if subset in layouts:
            tracks += _musdb_tracks(root, layouts[subset], subset)
    return root, tracks


def _holdout_order(name):
    # A stable pseudo-random order that does not depend on the other songs.
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def split_data(root=None, n_songs=DEFAULT_N_SONGS, quiet=False, strict=None):
    """Find the songs and split them into train / valid / test.

    Uses musdb's official validation split when the data set has those songs;
    otherwise holds out about a sixth of train/ (at least one song when there
    are two or more), always the same ones, and says so in `notes`.
    `n_songs` (None for all) takes that many training songs, by name; with
    strict=False a smaller data set is used whole, with a note, instead of
    being an error. strict=None: strict unless n_songs is DEFAULT_N_SONGS,
    the --n-songs default, which must work on any data set.
    """
    root, is_toy = resolve_root(root, quiet=quiet)
    layouts = detect_layout(root)
    is_wav = layouts.get("train", layouts.get("test"))
    train = valid = test = []
    if "train" in layouts:
        train = _musdb_tracks(root, is_wav, "train", split="train")
        valid = _musdb_tracks(root, is_wav, "train", split="valid")
    if "test" in layouts:
        test = _musdb_tracks(root, layouts["test"], "test")
    notes = []
    if is_toy:
        notes.append(toy_note(root))
    if train and not valid:
        n_hold = -(-len(train) // 6) if len(train) >= 2 else 0
        held = set(sorted((t.name for t in train), key=_holdout_order)[:n_hold])
        valid = [t for t in train if t.name in held]
        train = [t for t in train if t.name not in held]
        if not is_toy and n_hold:
            notes.append(
                f"No official musdb validation songs in {root}: holding out {n_hold} of its "
                "training songs for validation (always the same ones)."
            )
    if strict is None:
        strict = n_songs != DEFAULT_N_SONGS
    if n_songs is not None and train:
        if n_songs > len(train) and not strict:
            notes.append(f"{root} has {len(train)} training songs (fewer than --n-songs {n_songs}): using all of them.")
        elif n_songs > len(train):
            raise DataError(
                f"--n-songs {n_songs} asks for more training songs than the {len(train)} "
                f"available in {root}; pass --n-songs {len(train)} or fewer"
            )
        train = train[:n_songs]
    source = "toy" if is_toy else ("MUSDB18-HQ" if is_wav else "MUSDB18")
    if len(set(layouts.values())) > 1:
        source = f"mixed: train/ {'WAV' if is_wav else 'stems'}, test/ {'WAV' if layouts['test'] else 'stems'}"
    return DataSplit(root, source, is_wav, train, valid, test, notes)


# --------------------------------------------------------------------------
# Features: decoded once, cached on disk
# --------------------------------------------------------------------------

def _track_files(track):
    """The files a track's features come from: one .stem.mp4, or mixture.wav and vocals.wav."""
    if track.path.endswith(".stem.mp4"):
        return [track.path]
    return [track.path, track.sources["vocals"].path]


def cache_path(track, signal_config, cache_dir):
    """The cache file of a track: named after it, keyed by its files and the signal settings."""
    files = [list(file_identity(path).values()) for path in _track_files(track)]  # the key of caches already made
    key = {"files": files, "signal": signal_config.to_dict(), "version": CACHE_VERSION}
    return os.path.join(cache_dir, keyed_name(track.name, key, ".npy"))


def _decode(track):
    """(mix, vocals) as float32 (samples, channels) arrays, and the sample rate."""
    try:
        if not track.path.endswith(".stem.mp4"):  # MUSDB18-HQ: read the WAVs directly
            mix, rate = read_audio(track.path)
            vocals, vocals_rate = read_audio(track.sources["vocals"].path)
            if vocals_rate != rate:
                raise DataError(f"{track.sources['vocals'].path} and {track.path} differ in sample rate")
        else:
            rate = track.rate
            mix = track.audio.astype(np.float32)
            vocals = track.targets["vocals"].audio.astype(np.float32)
    except AudioError as err:
        raise DataError(str(err)) from err
    except Exception as err:  # stempeg/ffmpeg failures on a damaged stem file
        raise DataError(f"cannot decode {track.path}: {err}") from err
    n = min(len(mix), len(vocals))
    if n == 0:
        raise DataError(f"track {track.path} holds no audio samples")
    if n < 0.95 * track.duration * rate - rate:  # musdb's duration comes from the file's header
        raise DataError(f"{track.path} ends at {n / rate:.1f} s although its header says "
                        f"{track.duration:.1f} s: the file is truncated; download it again")
    return mix[:n], vocals[:n], rate


def compute_features(mix, vocals, rate, signal_config):
    """Mono, resample, STFT, scale: complex64 array (2, freq_bins, frames).

    Row 0 is the vocals' STFT and row 1 the accompaniment's (mix - vocals),
    both scaled so that the mix magnitude peaks at 1. Keeping the complex
    parts, not magnitudes, lets augmentation remix sources while the mix
    stays their exact sum.
    """
    mono = np.stack([to_mono(mix), to_mono(vocals)])  # (2, samples)
    mono = resample(mono.T, rate, signal_config.sample_rate).T  # (2, samples_8k)
    spec = stft(torch.from_numpy(np.ascontiguousarray(mono)), signal_config)  # (2, F, frames)
    mix_spec, vocals_spec = spec[0], spec[1]
    scale = magnitude_scale(mix_spec.abs())
    out = torch.stack([vocals_spec, mix_spec - vocals_spec]) * scale  # (2, F, frames)
    return out.numpy().astype(np.complex64)


def load_features(tracks, signal_config, cache_dir=DEFAULT_CACHE_DIR, quiet=False, jobs=1):
    """Cached features for each track (memory-mapped); decodes only what is missing.

    The missing songs are decoded `jobs` at a time, each in a process of its
    own, and each is cached as soon as it is done: an interrupted first run
    keeps them, and the next one decodes only the rest. A cache file that
    cannot be read back (a torn write, a foreign file) is rebuilt, never trusted.
    """
    os.makedirs(cache_dir, exist_ok=True)
    features, todo = [None] * len(tracks), []
    for i, track in enumerate(tracks):
        path = cache_path(track, signal_config, cache_dir)
        features[i] = _read_cache(path, signal_config)
        if features[i] is None:
            todo.append((i, tracks[i], path, signal_config))
    paths, seconds = {i: path for i, _, path, _ in todo}, sum(track.duration for _, track, _, _ in todo)
    workers = min(jobs, len(todo), max(1, int(seconds // PARALLEL_SECONDS)))  # each worker costs a start-up
    pool = multiprocessing.get_context("spawn").Pool(workers, _start_decoder) if workers > 1 else None
    if pool:  # the longest songs first, so that no worker is left alone with a long one at the end
        todo.sort(key=lambda job: -job[1].duration)
    started = time.time()
    try:
        done = pool.imap_unordered(_cache_song, todo) if pool else map(_cache_song, todo)
        for count, i in enumerate(_progress(done, "decoding audio (once)", quiet, total=len(todo)), 1):
            features[i] = _read_cache(paths[i], signal_config)
            if not quiet and not sys.stderr.isatty() and len(todo) > 3:  # a log file: a line per song
                print(f"decoded {count}/{len(todo)} songs (once){time_left(count, len(todo), time.time() - started)}",
                      flush=True)
        if pool:
            pool.close()
    except BaseException:
        if pool:  # Ctrl-C or a damaged song: the songs being decoded stop, those done stay cached
            pool.terminate()
            pool.join()
            for tmp in glob.glob(os.path.join(cache_dir, ".tmp-*")):  # what the stopped workers were writing
                if os.path.getmtime(tmp) >= started - 1:
                    os.unlink(tmp)
        raise
    if pool:
        pool.join()
    return features


def _start_decoder():
    """A decoding worker: Ctrl-C is the main process's to handle (load_features)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)  # one core per song
    find_ffmpeg()


def _cache_song(job):
    """Decode one song and write its cache file; returns its index."""
    i, track, path, signal_config = job
    mix, vocals, rate = _decode(track)
    _write_cache(path, compute_features(mix, vocals, rate, signal_config))
    return i


def training_features(root, n_songs, signal_config, cache_dir=DEFAULT_CACHE_DIR, quiet=False, jobs=1):
    """(split, features of the training songs, of the validation songs) for train.py.

    A data set that cannot train (no training song, or a single one, which
    leaves none for validation) is a DataError.
    """
    split = split_data(root, n_songs, quiet=quiet)
    if not split.train:
        raise DataError(f"{split.root} has no training songs under train/")
    if not split.valid:
        raise DataError(f"{split.root} has a single training song; validation needs at least two")
    features = load_features(split.train + split.valid, signal_config, cache_dir, quiet, jobs)
    return split, features[:len(split.train)], features[len(split.train):]


def _read_cache(path, signal_config):
    if not os.path.exists(path):
        return None
    try:
        array = np.load(path, mmap_mode="r")
        if array.dtype == np.complex64 and array.ndim == 3 and array.shape[:2] == (2, signal_config.freq_bins):
            return array
    except (OSError, ValueError):
        pass
    print(f"Cache file {path} is damaged; rebuilding it.")
    return None


def _write_cache(path, array):
    with atomic_path(path, size=array.nbytes) as tmp:
        np.save(tmp, array)


# --------------------------------------------------------------------------
# Patches and augmentation
# --------------------------------------------------------------------------

def crop(spec, start, frames):
    """spec[..., start:start+frames], zero-padded at the end when the track is shorter."""
    out = np.zeros(spec.shape[:-1] + (frames,), dtype=spec.dtype)
    piece = spec[..., start:start + frames]
    out[..., :piece.shape[-1]] = piece
    return out


def random_gain(spec, low=0.25, high=1.25):
    """Scale a source by a gain drawn uniformly in [low, high] (a loudness change)."""
    gain = low + (high - low) * torch.rand(()).item()
    return spec * np.float32(gain)


def random_tilt(spec, max_db=6.0):
    """Tilt a source's spectrum: a gain from -t/2 dB at 0 Hz to +t/2 dB at the top bin, t drawn in
    [-max_db, max_db] (an EQ change, as mixing and mastering make from one song to the next)."""
    tilt = max_db * (2 * torch.rand(()).item() - 1)
    ramp = np.linspace(-0.5, 0.5, spec.shape[-2], dtype=np.float32)[:, None]  # (F, 1)
    return spec * (10 ** (tilt * ramp / 20)).astype(np.float32)


class PatchDataset(Dataset):
    """(mix, vocals) scaled magnitude patches, float32 (freq_bins, patch_frames) each.

    Training (samples_per_track > 0): each item is a random excerpt of track
    `index % n_tracks`, at an offset drawn afresh every time it is asked for.
    Validation (samples_per_track == 0): a fixed tiling of every track from
    frame 0, the last patch zero-padded, so the loss is comparable across epochs.

    augment: per-source random gains (0.25 to 1.25) and, half the time, the
    accompaniment of another random track under this track's vocals.
    augment_eq: a random spectral tilt of the accompaniment (random_tilt). The mix
    is always rebuilt as vocals + accompaniment, so it stays the true sum.
    """

    def __init__(self, features, patch_frames, samples_per_track=0, augment=False, augment_eq=False):
        if not features:
            raise ValueError("PatchDataset needs at least one track")
        self.features = features
        self.patch_frames = patch_frames
        self.samples_per_track = samples_per_track
        self.augment = augment
        self.augment_eq = augment_eq
        if samples_per_track == 0:
            self.tiles = [(t, start) for t, f in enumerate(features)
                          for start in range(0, max(f.shape[-1], 1), patch_frames)]

    def __len__(self):
        if self.samples_per_track:
            return len(self.features) * self.samples_per_track
        return len(self.tiles)

    def _random_crop(self, track):
        spec = self.features[track]
        start = torch.randint(0, max(spec.shape[-1] - self.patch_frames, 0) + 1, ()).item()
        return crop(spec, start, self.patch_frames)

    def sources(self, index):
        """Complex (vocals, accompaniment) STFT patches of item `index`, augmented if asked."""
        if not self.samples_per_track:
            track, start = self.tiles[index]
            return crop(self.features[track], start, self.patch_frames)
        vocals, accompaniment = self._random_crop(index % len(self.features))
        if self.augment:
            if len(self.features) > 1 and torch.rand(()).item() < 0.5:
                other = torch.randint(0, len(self.features), ()).item()
                accompaniment = self._random_crop(other)[1]
            vocals, accompaniment = random_gain(vocals), random_gain(accompaniment)
        if self.augment_eq:
            accompaniment = random_tilt(accompaniment)
        return vocals, accompaniment

    def __getitem__(self, index):
        vocals_spec, accompaniment_spec = self.sources(index)  # complex (F, P) each
        mix_mag = np.abs(vocals_spec + accompaniment_spec)  # (F, P): the mix is always the sum of its parts
        return torch.from_numpy(mix_mag), torch.from_numpy(np.abs(vocals_spec))


def best_constant_mask_loss(dataset):
    """Validation loss of the best mask that ignores its input: one constant c.

    mean|c*X - Y| is minimised by the weighted median of Y/X with weights X,
    so this is the bar a useful model has to get clearly below.
    """
    mix_mags, vocals_mags = zip(*(dataset[i] for i in range(len(dataset))))  # (F, P) each
    x, y = torch.stack(mix_mags).flatten().double(), torch.stack(vocals_mags).flatten().double()  # (N,) each
    keep = x > 0
    ratios, weights = y[keep] / x[keep], x[keep]
    order = torch.argsort(ratios)
    cumulative = torch.cumsum(weights[order], 0)
    c = ratios[order][torch.searchsorted(cumulative, cumulative[-1] / 2)].clamp(0, 1)
    return torch.mean(torch.abs(c * x - y)).item(), c.item()


# --------------------------------------------------------------------------
# Command line: a summary of the data
# --------------------------------------------------------------------------

def _progress(items, desc, quiet, total=None):
    total = len(items) if total is None else total
    return progress_bar(items, quiet or total == 0, desc=desc, unit="track", total=total)


def summarize(split, signal_config, cache_dir):
    """Lines describing the data: source, songs per split, durations, patches, cache."""
    seconds_per_patch = signal_config.patch_frames * signal_config.hop_length / signal_config.sample_rate
    lines = [f"Data root:  {split.root}",
             f"Source:     {split.source}"
             + ("" if split.source.startswith("mixed") else
                f" ({'WAV folders' if split.is_wav else '.stem.mp4 files'})")]
    cached = total = 0
    for name, tracks in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        durations = [t.duration for t in tracks]
        frames = [1 + int(d * signal_config.sample_rate) // signal_config.hop_length for d in durations]
        tiles = sum(-(-f // signal_config.patch_frames) for f in frames)
        lines.append(f"{name + ':':11} {len(tracks):3d} songs, {sum(durations) / 60:6.1f} min, "
                     f"tiled by {tiles:4d} patches of {signal_config.patch_frames} frames "
                     f"({seconds_per_patch:.1f} s)")
        for track in tracks:
            total += 1
            cached += os.path.exists(cache_path(track, signal_config, cache_dir))
    lines.append(f"Cache:      {cache_dir} ({cached} of {total} songs cached)")
    lines.append("Validation scores these tiling patches; training instead draws --samples-per-track "
                 "random patches from each song every epoch.")
    return lines + split.notes


def get_args(argv=None):
    parser = ArgumentParser(description="Summarise the MUSDB18 data the U-Net would use.")
    add_root_flag(parser)
    add_training_songs_flag(parser)
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                        help="where decoded spectrograms are cached")
    return parser.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    signal_config = SignalConfig()
    try:
        split = split_data(args.root, args.n_songs)
    except UserError as err:
        sys.exit(f"error: {err}")
    print("\n".join(summarize(split, signal_config, args.cache_dir)))


if __name__ == "__main__":
    main()
