"""The songs of a data set: found, checked once, split, and decoded once into a cache.

Where the data comes from, in order: `--root`, the MUSDB_PATH environment
variable (musdb's own convention), else a small generated toy set in the
MUSDB18-HQ layout, built once under data/toy_musdb.

Every song is checked here, once, when it is found, from its files' headers
(cheap): its mixture and its four stems exist and can be read, they share one
sample rate and one length (within a frame), and it is longer than one STFT
window; its samples are checked to be finite when they are decoded for the
cache. A folder that is not a song, and a song that fails a check, is left
out with one line naming it and why, and the command goes on with the other
songs; the code after this module trusts the songs it is given.

The layout, the stems' order and the official validation songs are musdb's
own (its mus.yaml). The songs are listed here rather than by `musdb.DB`,
which takes any folder for a song and probes every file of a subset with
ffprobe as it lists it, failing on the first bad one: one damaged song would
stop every command.

Each song is decoded once: its features (data.compute_features, passed in)
are cached under data/cache, keyed by the audio files and every signal
setting, so later runs never decode audio.
"""

import functools
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf
import torch

from audio import NO_FFMPEG, AudioError, SignalConfig, find_ffmpeg, probe_audio, read_audio
from cli import DEFAULT_N_SONGS, UserError, progress_bar, time_left
from files import atomic_path, disk_full_error, file_identity, keyed_name, make_readable
from workers import WorkerDied, run_jobs

PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))


def data_folder():
    """Where the toy set and the caches go: the project's data/ folder, or, where the project cannot be
    written (a read-only install shared by a class), a folder of this user's ($XDG_CACHE_HOME, else
    ~/.cache), which the toy set's note then names."""
    folder = os.path.join(PROJECT_DIR, "data")
    if os.access(folder if os.path.isdir(folder) else PROJECT_DIR, os.W_OK):
        return folder
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser(os.path.join("~", ".cache")),
                        "unet-vocals")


DEFAULT_TOY_ROOT = os.path.join(data_folder(), "toy_musdb")
DEFAULT_CACHE_DIR = os.path.join(data_folder(), "cache")

# The toy set: 13 training songs (3 of them held out for validation) and 3
# test songs of 35 s, stereo 16-bit at 16 kHz: about 180 MB, built in seconds.
TOY_SETTINGS = {"version": 2, "n_train": 13, "n_test": 3, "seconds": 35.0,
                "sample_rate": 16000, "seed": 2017}
STEMS = ("vocals", "drums", "bass", "other")
ACCOMPANIMENT = ("bass", "drums", "other")  # musdb's accompaniment target, summed in its order
CACHE_VERSION = 1
# Audio to decode per worker process, at least: starting one costs seconds (its imports), while
# small sets decode faster in one process (benchmarks/README.md has both measured).
PARALLEL_SECONDS = 1200
# The checks' tolerances, from the model's STFT: stems may differ in length by up to one hop (a
# frame), and a song must be longer than one window, or the STFT has no frame to give.
_SIGNAL = SignalConfig()
FRAME_SECONDS = _SIGNAL.hop_length / _SIGNAL.sample_rate
MIN_SECONDS = _SIGNAL.n_fft / _SIGNAL.sample_rate


class DataError(UserError):
    """A problem with the data: a missing folder, no usable song, a song that cannot be read."""


# --------------------------------------------------------------------------
# A song
# --------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def musdb_setup():
    """musdb's description of MUSDB18 (file names, stem order, validation songs), read from its mus.yaml
    without importing musdb (which imports stempeg, which refuses to load without ffmpeg)."""
    import yaml

    folder = importlib.util.find_spec("musdb").submodule_search_locations[0]
    with open(os.path.join(folder, "configs", "mus.yaml")) as f:
        return yaml.safe_load(f)


@dataclass
class Song:
    """One song of a data set, checked when it was found (find_in_subset).

    `path` is its mixture: the song folder's mixture.wav (MUSDB18-HQ), or
    the .stem.mp4 file (MUSDB18), whose first stream is the mixture.
    """

    name: str
    subset: str  # "train" or "test"
    path: str
    rate: int
    frames: int  # of the mixture, from its header
    stem_info: object = None  # the .stem.mp4's stempeg.Info (its ffprobe), None for WAV folders

    @property
    def duration(self):
        return self.frames / self.rate

    @property
    def is_stem_file(self):
        return self.stem_info is not None

    @property
    def location(self):
        """Where the song is, as the user sees it: its folder (MUSDB18-HQ) or its .stem.mp4 file."""
        return self.path if self.is_stem_file else os.path.dirname(self.path)

    def file(self, stem):
        """The file a stem ("mixture", "vocals", ...) is read from."""
        if self.is_stem_file or stem == "mixture":
            return self.path
        return os.path.join(os.path.dirname(self.path), musdb_setup()["sources"][stem])

    @property
    def files(self):
        """Every file of the song: what tells whether it changed (score caches key on them)."""
        return [self.path] if self.is_stem_file else [self.path] + sorted(self.file(s) for s in STEMS)

    def read(self, stem):
        """A stem ("mixture", "vocals", "drums", "bass", "other", or "accompaniment", the sum of the
        last three as musdb's target) as float32 (samples, channels). AudioError if it cannot be read."""
        if stem != "accompaniment":
            return np.asarray(self._read(stem), dtype=np.float32)  # a WAV's is float32 already: no copy
        parts = [self._read(s) for s in ACCOMPANIMENT]
        n = min(len(part) for part in parts)  # stems may differ by up to a frame (the checks allow it)
        total = parts[0][:n].astype(np.float64)  # summed in float64, in musdb's order, as its target is
        for part in parts[1:]:
            total += part[:n]
        return total.astype(np.float32)

    def _read(self, stem):
        """A stem as read: float32 from a WAV folder, float64 from a .stem.mp4 (as musdb reads it)."""
        if not self.is_stem_file:
            return read_audio(self.file(stem))[0]
        if not find_ffmpeg():
            raise AudioError(f"ffmpeg is needed to read {self.path}, but {NO_FFMPEG}")
        import stempeg  # here, once find_ffmpeg has put ffmpeg on PATH: stempeg refuses to load without it

        try:  # as musdb reads it: 16-bit samples, scaled to float64
            audio, _ = stempeg.read_stems(self.path, stem_id=musdb_setup()["stem_ids"][stem], info=self.stem_info,
                                          ffmpeg_format="s16le")
        except Exception as err:  # ffmpeg's failures on a damaged file
            raise AudioError(f"cannot decode the {stem} of {self.path}: {err}") from err
        return np.asarray(audio).reshape(len(audio), -1)


# --------------------------------------------------------------------------
# Finding the songs and checking each one
# --------------------------------------------------------------------------

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
    refused (which of the two did the user mean?).
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
                            "per subset folder")
        if has_stems or has_wav:
            layouts[subset] = has_wav
    if not layouts:
        raise DataError(
            f"{root} holds no MUSDB tracks: expected <song>.stem.mp4 files or <song>/mixture.wav "
            "folders under train/ or test/"
        )
    return layouts


def _wav_names():
    """{stem: file name} of a MUSDB18-HQ song folder, the mixture first."""
    setup = musdb_setup()
    return {"mixture": setup["mixture"], **{stem: setup["sources"][stem] for stem in STEMS}}


def _song_kinds(folder):
    """(holds .stem.mp4 files, holds MUSDB18-HQ song folders): the songs right in `folder`."""
    entries = os.listdir(folder)
    names = _wav_names().values()
    return (any(e.endswith(".stem.mp4") for e in entries),
            any(os.path.isfile(os.path.join(folder, e, name)) for e in entries for name in names))


def find_in_subset(root, subset, is_wav):
    """(songs, skipped) of root/subset, sorted by name: [Song] that passed every check, and
    [(path, reason)] of the entries left out (folders that are not songs, songs that fail a check)."""
    folder = os.path.join(root, subset)
    songs, skipped = [], []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if is_wav and os.path.isdir(path):
            song, reason = _check_wav_song(path, subset)
        elif not is_wav and entry.endswith(".stem.mp4"):
            song, reason = _check_stem_file(path, subset)
        else:
            continue  # a file beside WAV folders, or anything but a stem file beside stem files
        if song:
            songs.append(song)
        else:
            skipped.append((path, reason))
    return songs, skipped


def _check_wav_song(folder, subset):
    """(Song, None) for a MUSDB18-HQ song folder that passes the checks, else (None, the reason)."""
    names = _wav_names()
    missing = [name for name in names.values() if not os.path.isfile(os.path.join(folder, name))]
    if len(missing) == len(names):
        return None, f"not a song (none of {', '.join(names.values())})"
    if missing:
        return None, f"no {' nor '.join(missing)}"
    headers = {}
    for stem, name in names.items():
        try:
            headers[name] = probe_audio(os.path.join(folder, name))
        except AudioError:
            return None, f"{name} cannot be read (damaged, cut short or not audio)"
    reason = _inconsistency(headers, names["mixture"])
    if reason:
        return None, reason
    frames, rate, _ = headers[names["mixture"]]
    return Song(os.path.basename(folder), subset, os.path.join(folder, names["mixture"]), rate, frames), None


def _check_stem_file(path, subset):
    """(Song, None) for a .stem.mp4 that passes the checks, else (None, the reason)."""
    if not find_ffmpeg():
        raise DataError(f"ffmpeg is needed to read MUSDB18's .stem.mp4 files, but {NO_FFMPEG}")
    import stempeg

    try:
        info = stempeg.Info(path)  # ffprobe
        streams = info.nb_audio_streams
        headers = {f"stream {i}": (round(info.duration(i) * info.sample_rate(i)), info.sample_rate(i),
                                   info.channels(i)) for i in range(min(streams, 5))}
    except Exception:  # ffprobe's failures, and what it leaves out of a damaged file's header
        return None, "cannot be read (damaged, cut short or not audio)"
    if streams < 5:
        return None, f"has {streams} audio streams where a MUSDB18 .stem.mp4 has 5 (mixture, drums, bass, other, " \
                     "vocals)"
    reason = _inconsistency(headers, "stream 0")
    if reason:
        return None, reason
    frames, rate, _ = headers["stream 0"]
    return Song(os.path.basename(path)[:-len(".stem.mp4")], subset, path, rate, frames, info), None


def _inconsistency(headers, mixture):
    """Why a song's files ({name: (frames, rate, channels)}) cannot go together, or None."""
    frames, rate, channels = headers[mixture]
    for name, (n, r, c) in headers.items():
        if r != rate:
            return f"{name} is at {r} Hz and {mixture} at {rate} Hz"
        if c != channels:
            return f"{name} has {c} channel{'s' if c > 1 else ''} and {mixture} {channels}"
        if abs(n - frames) > FRAME_SECONDS * rate:
            return f"{name} lasts {n / r:.2f} s and {mixture} {frames / rate:.2f} s: one of them is cut short"
    if frames < MIN_SECONDS * rate:
        return f"it lasts {1000 * frames / rate:.0f} ms, less than one STFT window ({1000 * MIN_SECONDS:.0f} ms)"
    return None


def skipped_line(path, reason):
    """The line that says a song was left out, and why."""
    return f"Skipping {path}: {reason}"


# --------------------------------------------------------------------------
# The songs of a run: for training, split; for inference and evaluation, listed
# --------------------------------------------------------------------------

@dataclass
class DataSplit:
    """The songs one run uses and where they came from; `notes` are lines to show the user."""

    root: str
    source: str  # "toy", "MUSDB18" (stems) or "MUSDB18-HQ" (WAV)
    is_wav: bool
    train: list
    valid: list
    test: list
    notes: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # [(path, reason)] of what was left out


def find_songs(root=None, subsets=("test", "train"), quiet=False):
    """(root, songs, skipped) of the data in use, test songs first: for inference and evaluation.
    `skipped` lists (path, reason) of the songs left out."""
    root, is_toy = resolve_root(root, quiet=quiet)
    layouts = detect_layout(root)
    if is_toy and not quiet:
        print(toy_note(root))
    songs, skipped = [], []
    for subset in subsets:
        if subset in layouts:
            found, left_out = find_in_subset(root, subset, layouts[subset])
            songs += found
            skipped += left_out
    return root, songs, skipped


def find_song(found, name, root, subset="", skipped=()):
    """The song called `name` (any case) among `found`, or a DataError that says why it was left out (it is
    among `skipped`, [(path, reason)]) or names some songs that exist."""
    for song in found:
        if song.name.lower() == name.lower():
            return song
    for path, reason in skipped:
        if os.path.basename(path).lower() in (name.lower(), f"{name}.stem.mp4".lower()):
            raise DataError(f"the song {name!r} was left out: {reason}")
    some = ", ".join(song.name for song in found[:5])
    raise DataError(f"no {subset + ' ' if subset else ''}song named {name!r} in {root}; some there are: {some}")


def _holdout_order(name):
    # A stable pseudo-random order that does not depend on the other songs. os.fsencode: a name that is
    # not valid UTF-8 holds surrogates, which str.encode refuses; valid names give their UTF-8 bytes.
    return hashlib.sha1(os.fsencode(name)).hexdigest()


def split_data(root=None, n_songs=DEFAULT_N_SONGS, quiet=False, strict=None):
    """Find the songs and split them into train / valid / test.

    Uses musdb's official validation songs when the data set has them;
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
    found = {subset: find_in_subset(root, subset, layouts[subset]) if subset in layouts else ([], [])
             for subset in ("train", "test")}
    skipped = found["train"][1] + found["test"][1]
    notes = [toy_note(root)] if is_toy else []
    notes += [skipped_line(path, reason) for path, reason in skipped]
    official = set(musdb_setup()["validation_tracks"])
    train = [song for song in found["train"][0] if song.name not in official]
    valid = [song for song in found["train"][0] if song.name in official]
    test = found["test"][0]
    if train and not valid:
        n_hold = -(-len(train) // 6) if len(train) >= 2 else 0
        held = set(sorted((song.name for song in train), key=_holdout_order)[:n_hold])
        valid = [song for song in train if song.name in held]
        train = [song for song in train if song.name not in held]
        if not is_toy and n_hold:
            notes.append(f"No official musdb validation songs in {root}: holding out {n_hold} of its "
                         "training songs for validation (always the same ones).")
    if strict is None:
        strict = n_songs != DEFAULT_N_SONGS
    if n_songs is not None and train:
        if n_songs > len(train) and not strict:
            notes.append(f"{root} has {len(train)} training songs (fewer than --n-songs {n_songs}): using all of them.")
        elif n_songs > len(train):
            raise DataError(f"--n-songs {n_songs} asks for more training songs than the {len(train)} "
                            f"available in {root}; pass --n-songs {len(train)} or fewer")
        train = train[:n_songs]
    source = "toy" if is_toy else ("MUSDB18-HQ" if is_wav else "MUSDB18")
    if len(set(layouts.values())) > 1:
        source = f"mixed: train/ {'WAV' if is_wav else 'stems'}, test/ {'WAV' if layouts['test'] else 'stems'}"
    return DataSplit(root, source, is_wav, train, valid, test, notes, skipped)


# --------------------------------------------------------------------------
# Features: decoded once, cached on disk
# --------------------------------------------------------------------------

def cache_path(song, signal_config, cache_dir):
    """The cache file of a song: named after it, keyed by its files and the signal settings."""
    sources = [song.path] if song.is_stem_file else [song.path, song.file("vocals")]
    files = [list(file_identity(path).values()) for path in sources]  # the key of caches already made
    key = {"files": files, "signal": signal_config.to_dict(), "version": CACHE_VERSION}
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
    if workers > 1:  # the longest songs first, so that no worker is left alone with a long one at the end
        todo.sort(key=lambda job: -job[1].duration)
    started = time.time()
    done = run_jobs(_cache_song, todo, workers, _start_decoder)
    try:
        for count, (job, reason) in enumerate(_progress(done, "decoding audio (once)", quiet, total=len(todo)), 1):
            i, song, path = job[:3]
            if reason:
                report(skipped_line(song.location, reason))
            else:
                features[i] = _read_cache(path, signal_config, report)
            if not quiet and len(todo) > 3 and not sys.stderr.isatty():  # a log file: a line per song
                print(f"decoded {count}/{len(todo)} songs (once){time_left(count, len(todo), time.time() - started)}",
                      flush=True)
    except WorkerDied as died:
        raise DataError(f"the process decoding {died.job[1].location} died (exit code {died.exitcode}; memory may be "
                        "short): run again with --decode-jobs 1; the songs decoded so far are kept") from died
    finally:
        done.close()  # stops the workers if the loop did not finish (Ctrl-C, an error)
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
    from toy_music import synth_song  # only when the set is built: its import (scipy.signal) takes seconds

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
        make_readable(tmp)  # mkdtemp makes it private
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


def ensure_toy_musdb(root=None, quiet=False):
    """Build the toy set (default: DEFAULT_TOY_ROOT) unless a complete one with the same settings is there;
    a DataError if it cannot be written."""
    root = root or DEFAULT_TOY_ROOT
    marker = os.path.join(root, "toy.json")
    try:
        with open(marker) as f:
            if json.load(f) == TOY_SETTINGS:
                return root
    except (OSError, ValueError):
        pass
    try:
        build_toy_musdb(root, quiet=quiet)
    except OSError as err:  # a full disk is a DiskFullError already
        raise DataError(f"cannot write the toy data set to {root} ({err.strerror}): point --root (or MUSDB_PATH) at "
                        "MUSDB18, or set XDG_CACHE_HOME to a folder you can write") from err
    return root
