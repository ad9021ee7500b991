"""Properties over generated data roots: the cases nobody listed.

hypothesis builds small MUSDB18-HQ roots (songs of 3 s at 8 kHz) and breaks
some of their songs in random ways: stems missing, empty, cut short, made
of text, full of NaN, at another rate or channel count, replaced by dangling
links, folders or another song's stem, FLAC behind a .wav name, song names
that are not plain ASCII (or not UTF-8), stray folders and files. Whatever it
makes, finding the songs and building their features must:

- raise nothing but a DataError (one line), and that only when no song is left;
- use every song that was not broken (and the harmless variations: every
  stem at another rate or channel count, FLAC behind a .wav name);
- leave out every song that is surely broken, and name every song it leaves
  out in one line;
- read every song it keeps whole, at the length its headers promise;
- change no file of the root (checksums), and leave no half-written file.

CI runs a fixed, bounded set of examples (derandomized); for a longer hunt:
HYPOTHESIS_EXAMPLES=300 pytest tests/test_properties.py
"""

import hashlib
import os
import tempfile

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data
import songs
from spectral import SignalConfig

RATE, SECONDS = 8000, 3.0
STEM_FILES = ("mixture.wav", "vocals.wav", "drums.wav", "bass.wav", "other.wav")
EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "25"))

# What can happen to a song: (name, is it surely broken for training). None: it depends (see `breaks`).
DAMAGES = {
    "none": False, "all stems at 16 kHz": False, "all stems mono": False, "FLAC behind a .wav name": False,
    "missing": True, "empty": True, "text": True, "dangling link": True, "NaN in mixture or vocals": True,
    "one stem at 16 kHz": True, "one stem mono": True, "another song's stem": True,
    "bytes cut": None, "samples cut": None, "NaN in drums": False, "stem is a folder": True,
}
# Song folder names as users' disks have them: accents, a newline, bytes that are not UTF-8 (Linux).
NAME_ENDINGS = ["", " é", " ♪", "\nsecond line", os.fsdecode(b" caf\xe9")]


def write_song(folder, seed, rate=RATE, channels=2):
    """A song of SECONDS whose mixture is the sum of its 16-bit stems. (Paths go to soundfile as bytes: a
    name that is not UTF-8 cannot be encoded back from Python's string.)"""
    rng = np.random.default_rng(seed)
    n = int(SECONDS * rate)
    t = np.arange(n) / rate
    stems = {}
    for i, name in enumerate(("vocals", "drums", "bass", "other")):
        tone = 0.2 * np.sin(2 * np.pi * (110 * (i + 1) + seed % 50) * t)
        stems[name] = np.round(32767 * (tone[:, None] + 0.02 * rng.standard_normal((n, channels)))).astype(np.int32)
    stems["mixture"] = sum(stems.values())
    os.makedirs(folder)
    for name, x in stems.items():
        sf.write(os.fsencode(os.path.join(folder, f"{name}.wav")), np.clip(x, -32768, 32767).astype(np.int16), rate)


def damage(folder, kind, stem, fraction, other_song):
    """Break `folder`'s song as `kind` says (on `stem` where one stem is concerned)."""
    path = os.path.join(folder, stem)
    if kind in ("all stems at 16 kHz", "all stems mono"):
        for name in STEM_FILES:
            audio, rate = sf.read(os.fsencode(os.path.join(folder, name)), dtype="int16", always_2d=True)
            if kind == "all stems mono":
                audio = audio[:, :1]
            sf.write(os.fsencode(os.path.join(folder, name)), audio, 16000 if kind == "all stems at 16 kHz" else rate)
    elif kind == "FLAC behind a .wav name":
        audio, rate = sf.read(os.fsencode(path), dtype="int16")
        sf.write(os.fsencode(path), audio, rate, format="FLAC")
    elif kind == "missing":
        os.unlink(path)
    elif kind == "stem is a folder":
        os.unlink(path)
        os.makedirs(path)
    elif kind == "empty":
        open(path, "wb").close()
    elif kind == "text":
        with open(path, "w") as f:
            f.write("not audio\n" * 40)
    elif kind == "dangling link":
        os.unlink(path)
        os.symlink(os.path.join(folder, "no such file.wav"), path)
    elif kind in ("NaN in mixture or vocals", "NaN in drums"):
        path = os.path.join(folder, "drums.wav" if kind == "NaN in drums" else
                            ("mixture.wav" if fraction < 0.5 else "vocals.wav"))
        audio, rate = sf.read(os.fsencode(path), dtype="float32")
        audio[int(fraction * (len(audio) - 1))] = np.nan
        sf.write(os.fsencode(path), audio, rate, subtype="FLOAT")
    elif kind in ("one stem at 16 kHz", "one stem mono"):
        audio, rate = sf.read(os.fsencode(path), dtype="int16", always_2d=True)
        audio = audio[:, :1] if kind == "one stem mono" else audio
        sf.write(os.fsencode(path), audio, 16000 if "16 kHz" in kind else rate)
    elif kind == "another song's stem":
        os.unlink(path)
        os.symlink(os.path.join(other_song, "vocals.wav"), path)
    elif kind == "bytes cut":
        content = open(path, "rb").read()
        open(path, "wb").write(content[:int(fraction * len(content))])
    elif kind == "samples cut":
        audio, rate = sf.read(os.fsencode(path), dtype="int16")
        sf.write(os.fsencode(path), audio[:int(fraction * len(audio))], rate)


def breaks(kind, stem, fraction):
    """True if the damage surely makes the song unusable for training, False if surely not, None if unsure."""
    if kind == "bytes cut":  # a header cut short, or the data: unusable when more than a frame is gone
        return True if fraction < 0.01 else (None if fraction > 0.9 else True)
    if kind == "samples cut":
        return None if fraction > 0.95 else True
    return DAMAGES[kind]


song_damage = st.tuples(st.sampled_from(sorted(DAMAGES)), st.sampled_from(STEM_FILES),
                        st.floats(0.0, 1.0, allow_nan=False), st.sampled_from(NAME_ENDINGS))
roots = st.fixed_dictionaries({
    "train": st.lists(song_damage, min_size=1, max_size=5),
    "test": st.lists(song_damage, min_size=0, max_size=2),
    "strays": st.lists(st.sampled_from(["hidden folder", "empty folder", "text folder", "loose file",
                                        "link to a song", "dangling folder link"]), max_size=3),
})


def build(root, plan):
    """Write the root `plan` describes; returns {song folder: True/False/None (broken?)}."""
    expected = {}
    for subset in ("train", "test"):
        os.makedirs(os.path.join(root, subset))
        for i, (kind, stem, fraction, ending) in enumerate(plan[subset]):
            folder = os.path.join(root, subset, f"Song {subset} {i}{ending}")
            write_song(folder, seed=100 * (subset == "test") + i)
            other = os.path.join(root, "other song")
            if kind == "another song's stem" and not os.path.isdir(other):
                write_song(other, seed=999, rate=RATE)
                longer = np.zeros((int(1.7 * SECONDS * RATE), 2), np.int16)
                sf.write(os.fsencode(os.path.join(other, "vocals.wav")), longer, RATE)
            damage(folder, kind, stem, fraction, other)
            expected[folder] = breaks(kind, stem, fraction)
    train = os.path.join(root, "train")
    for i, stray in enumerate(plan["strays"]):
        path = os.path.join(train, f".hidden {i}" if stray == "hidden folder" else f"stray {i}")
        if stray in ("hidden folder", "empty folder", "text folder"):
            os.makedirs(path)
            if stray != "empty folder":
                open(os.path.join(path, "notes.txt"), "w").write("not a song")
        elif stray == "loose file":
            open(path + ".txt", "w").write("a file beside the songs")
        elif stray == "link to a song" and expected:
            os.symlink(next(iter(expected)), path)
            expected[path] = expected[next(iter(expected))]
        elif stray == "dangling folder link":
            os.symlink(os.path.join(root, "nowhere"), path)
    return expected


def checksums(root):
    return {os.path.join(parent, name): hashlib.sha1(open(os.path.join(parent, name), "rb").read()).hexdigest()
            for parent, _, names in os.walk(root) for name in names
            if os.path.exists(os.path.join(parent, name))}


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(plan=roots)
def test_finding_and_decoding_songs_uses_every_good_one_and_names_every_one_left_out(plan):
    with tempfile.TemporaryDirectory() as workdir:
        root, cache = os.path.join(workdir, "musdb"), os.path.join(workdir, "cache")
        expected = build(root, plan)
        before = checksums(root)
        lines = []
        try:
            split = songs.split_data(root, n_songs=None, quiet=True)
            lines += split.notes
            found = split.train + split.valid + split.test
            features = data.load_features(found, SignalConfig(), cache, quiet=True, report=lines.append)
        except songs.DataError as err:  # only when nothing usable is left: one line
            assert "\n" not in str(err)
            assert not [folder for folder, broken in expected.items() if broken is False], str(err)
            found, features = [], []
        used = {song.location for song, f in zip(found, features) if f is not None}
        named = {line.split(": ", 1)[0][len("Skipping "):] for line in lines if line.startswith("Skipping ")}
        for folder, broken in expected.items():
            if broken is False:
                assert folder in used, (folder, lines)
            elif broken is True:
                assert folder not in used and folder in named, (folder, lines)
            else:
                assert (folder in used) != (folder in named), (folder, lines)
        for song, f in zip(found, features):
            if f is not None:
                assert f.shape[:2] == (2, 513) and np.isfinite(f).all()
                for stem in ("mixture", "vocals", "accompaniment"):  # what evaluate.py reads
                    audio = song.read(stem)
                    assert abs(len(audio) - song.frames) <= songs.FRAME_SECONDS * song.rate
        assert checksums(root) == before
        assert not [name for name in os.listdir(cache) if name.startswith(".tmp-")] if os.path.isdir(cache) else True
