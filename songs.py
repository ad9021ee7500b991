"""The songs of a data set: found, checked once, split, and picked by name.

Where the data comes from, in order: `--root`, the MUSDB_PATH environment
variable (musdb's own convention), else the generated toy set (toy_set.py),
built once under data/toy_musdb.

Every song is checked here, once, when it is found, from its files' headers
(cheap): its mixture and its four stems exist and can be read, they share one
sample rate and one length (within a frame), and it is longer than one STFT
window; its samples are checked to be finite when they are decoded for the
feature cache (feature_cache.py). A folder that is not a song, and a song that
fails a check, is left out with one line naming it and why, and the command
goes on with the other songs; the code after this module trusts the songs it
is given.

The layout, the stems' order and the official validation songs are musdb's
own (its mus.yaml, files.musdb_setup). The songs are listed here rather than
by `musdb.DB`, which takes any folder for a song and probes every file of a
subset with ffprobe as it lists it, failing on the first bad one: one damaged
song would stop every command.
"""

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from audio import NO_FFMPEG, AudioError, ffmpeg_name, find_ffmpeg, probe_audio, read_audio
from cli import DEFAULT_N_SONGS, UserError
from files import ACCOMPANIMENT, STEMS, musdb_setup
from spectral import SignalConfig
from toy_set import ensure_toy_musdb

# The checks' tolerances, from the model's STFT: stems may differ in length by up to one hop (a
# frame), and a song must be longer than one window, or the STFT has no frame to give.
_SIGNAL = SignalConfig()
FRAME_SECONDS = _SIGNAL.hop_length / _SIGNAL.sample_rate
_MIN_SECONDS = _SIGNAL.n_fft / _SIGNAL.sample_rate


class DataError(UserError):
    """A problem with the data: a missing folder, no usable song, a song that cannot be read."""


# --------------------------------------------------------------------------
# A song
# --------------------------------------------------------------------------


@dataclass
class Song:
    """One song of a data set, checked when it was found (_find_in_subset).

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
            audio, _ = stempeg.read_stems(ffmpeg_name(self.path), stem_id=musdb_setup()["stem_ids"][stem],
                                          info=self.stem_info, ffmpeg_format="s16le")  # stempeg hands the name on
        except Exception as err:  # ffmpeg's failures on a damaged file
            raise AudioError(f"cannot decode the {stem} of {self.path}: {err}") from err
        return np.asarray(audio).reshape(len(audio), -1)


# --------------------------------------------------------------------------
# Finding the songs and checking each one
# --------------------------------------------------------------------------

def _toy_note(root):
    return (f"Using the generated toy data set in {root}; for real music point --root "
            "(or MUSDB_PATH) at MUSDB18 or MUSDB18-HQ.")


def _resolve_root(root=None, quiet=False):
    """Return (root, is_toy): --root, else MUSDB_PATH, else the toy set (built if needed)."""
    if root:
        return os.path.abspath(os.path.expanduser(root)), False
    if os.environ.get("MUSDB_PATH"):
        return os.path.abspath(os.path.expanduser(os.environ["MUSDB_PATH"])), False
    return ensure_toy_musdb(quiet=quiet), True


def _detect_layout(root):
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


def _find_in_subset(root, subset, is_wav):
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
        info = stempeg.Info(ffmpeg_name(path))  # ffprobe, given the name as it is
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
    if frames < _MIN_SECONDS * rate:
        return f"it lasts {1000 * frames / rate:.0f} ms, less than one STFT window ({1000 * _MIN_SECONDS:.0f} ms)"
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
    root, is_toy = _resolve_root(root, quiet=quiet)
    layouts = _detect_layout(root)
    if is_toy and not quiet:
        print(_toy_note(root))
    songs, skipped = [], []
    for subset in subsets:
        if subset in layouts:
            found, left_out = _find_in_subset(root, subset, layouts[subset])
            songs += found
            skipped += left_out
    return root, songs, skipped


def find_song(found, name, root, subset="", skipped=()):
    """The song called `name` among `found`: the one of that very name, else the one whose name differs only
    in case, if no other does. A DataError otherwise: two songs that differ only in case (both named), the
    song was left out (it is among `skipped`, [(path, reason)]: why), or none is called so (some that are)."""
    for same in (lambda a, b: a == b, lambda a, b: a.lower() == b.lower()):  # the exact name first
        names = {song.name for song in found if same(song.name, name)}  # one name may be in test and in train
        if len(names) > 1:
            raise DataError(f"{name!r} could be any of {', '.join(repr(n) for n in sorted(names))} (their names differ "
                            "only in case): give the one you mean as it is spelled")
        if names:
            return next(song for song in found if song.name in names)
        for path, reason in skipped:
            if any(same(os.path.basename(path), n) for n in (name, f"{name}.stem.mp4")):
                raise DataError(f"the song {name!r} was left out: {reason}")
    some = ", ".join(song.name for song in found[:5])
    raise DataError(f"no {subset + ' ' if subset else ''}song named {name!r} in {root}; some there are: {some}")


def find_songs_by_name(found, names, root, subset="", skipped=()):
    """The songs called `names` (find_song), in the order first named, each once: a song named twice
    (in another case, say) is one song, separated or scored once."""
    chosen = {}
    for name in names:
        song = find_song(found, name, root, subset, skipped)
        chosen.setdefault(song.path, song)
    return list(chosen.values())


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
    root, is_toy = _resolve_root(root, quiet=quiet)
    layouts = _detect_layout(root)
    is_wav = layouts.get("train", layouts.get("test"))
    found = {subset: _find_in_subset(root, subset, layouts[subset]) if subset in layouts else ([], [])
             for subset in ("train", "test")}
    skipped = found["train"][1] + found["test"][1]
    notes = [_toy_note(root)] if is_toy else []
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


# --------------------------------------------------------------------------
# The toy data set
# --------------------------------------------------------------------------


