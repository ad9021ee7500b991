"""Broken songs, cache files and worker processes: each noticed where it enters, named in one line.

The commands go on with every good song, exit non-zero where something
could not be done, and never change a file of the data they read (checked
by checksums). The generative tests of test_properties.py look for the
cases nobody listed; these are the ones somebody did.
"""

import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import data
import songs
import train

pytestmark = pytest.mark.usefixtures("quick_figures")  # no test here looks at the figures

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--channels", "4", "8", "--batch-size", "4", "--samples-per-track", "2", "--epochs", "1", "--quiet",
        "--figure-every", "100"]


def checksums(folder):
    """{relative path: sha1} of every file below `folder`."""
    return {os.path.relpath(os.path.join(parent, name), folder):
            hashlib.sha1(open(os.path.join(parent, name), "rb").read()).hexdigest()
            for parent, _, names in os.walk(folder) for name in names}


def copy_root(toy_root, tmp_path):
    root = tmp_path / "musdb"
    shutil.copytree(toy_root, root)
    return root


def train_songs(root):
    return sorted(p for p in (root / "train").iterdir() if p.is_dir())


def train_on(root, tmp_path, *extra):
    train.main([*TINY, "--root", str(root), "--cache-dir", str(tmp_path / "cache"),
                "--save-dir", str(tmp_path / "ckpt"), *extra])


# Each edit breaks one training song folder; the song is then left out with this reason.
def cut(name, seconds):
    def edit(folder):
        audio, rate = sf.read(folder / name, dtype="int16")
        sf.write(folder / name, audio[:int(seconds * rate)], rate)
    return edit


def every_stem(change):
    def edit(folder):
        for path in folder.glob("*.wav"):
            audio, rate = sf.read(path, dtype="float32")
            sf.write(path, change(audio), rate, subtype="FLOAT")
    return edit


def with_nan(audio):
    audio = audio.copy()
    audio[len(audio) // 2] = np.nan
    return audio


BROKEN_SONGS = [
    ("no mixture", lambda f: (f / "mixture.wav").unlink(), "no mixture.wav"),
    ("no vocals", lambda f: (f / "vocals.wav").unlink(), "no vocals.wav"),
    ("header cut short", lambda f: (f / "mixture.wav").write_bytes((f / "mixture.wav").read_bytes()[:30]),
     "mixture.wav cannot be read"),
    ("empty file", lambda f: (f / "vocals.wav").write_bytes(b""), "vocals.wav cannot be read"),
    ("text as audio", lambda f: (f / "drums.wav").write_text("not a RIFF file\n" * 50), "drums.wav cannot be read"),
    ("vocals shorter", cut("vocals.wav", 5.0), "vocals.wav lasts 5.00 s and mixture.wav 14.00 s"),
    ("other rate", lambda f: sf.write(f / "bass.wav", sf.read(f / "bass.wav")[0], 22050), "bass.wav is at 22050 Hz"),
    ("50 ms long", lambda f: [cut(p.name, 0.05)(f) for p in list(f.glob("*.wav"))], "less than one STFT window"),
    ("NaN samples", every_stem(with_nan), "holds NaN or infinite samples"),
]


@pytest.mark.parametrize("kind, edit, reason", BROKEN_SONGS, ids=[case[0] for case in BROKEN_SONGS])
def test_a_broken_training_song_is_left_out_in_one_line_and_training_goes_on(kind, edit, reason, toy_root,
                                                                             tmp_path, capsys):
    root = copy_root(toy_root, tmp_path)
    broken = train_songs(root)[0]
    edit(broken)
    before = checksums(root)
    train_on(root, tmp_path)
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if line.startswith("Skipping ")]
    assert len(skipped) == 1 and skipped[0].startswith(f"Skipping {broken}: ") and reason in skipped[0], out
    assert "1 left out (see above)" in out and (tmp_path / "ckpt" / "best_model.pth").is_file()
    assert checksums(root) == before  # nothing of the data set changed


def test_nan_in_a_validation_song_leaves_it_out_and_the_run_still_picks_a_best_model(toy_root, tmp_path, capsys):
    """Before, valid loss was nan, no best_model.pth was written, and the exit status was 0."""
    root = copy_root(toy_root, tmp_path)
    for i in range(3):  # 7 songs: 2 held out for validation
        shutil.copytree(train_songs(root)[0], root / "train" / f"Copy {i}")
    held_out = [song.location for song in songs.split_data(str(root), n_songs=None, quiet=True).valid]
    every_stem(with_nan)(root / "train" / os.path.basename(held_out[0]))
    train_on(root, tmp_path)
    out = capsys.readouterr().out
    assert f"Skipping {held_out[0]}: its mixture holds NaN or infinite samples" in out
    assert "1 validation songs" in out and "valid nan" not in out
    assert (tmp_path / "ckpt" / "best_model.pth").is_file()
    every_stem(with_nan)(root / "train" / os.path.basename(held_out[1]))  # no validation song left
    with pytest.raises(SystemExit) as stop:
        train_on(root, tmp_path, "--save-dir", str(tmp_path / "other"))
    assert str(stop.value.code).startswith("error: none of the validation songs of ")


def test_broken_stem_files_are_left_out_in_one_line_each_and_training_goes_on(stem_file, tmp_path, capsys):
    root = tmp_path / "stems"
    (root / "train").mkdir(parents=True)
    content = open(stem_file, "rb").read()
    (root / "train" / "Cut - Short.stem.mp4").write_bytes(content[:len(content) // 3])  # a stopped download
    (root / "train" / "Not - Audio.stem.mp4").write_bytes(b"not an mp4 at all")
    for name in ("A", "B"):  # two good songs: one to train on, one held out
        os.symlink(stem_file, root / "train" / f"{name}.stem.mp4")
    before = checksums(root)
    train_on(root, tmp_path)
    out = capsys.readouterr().out
    skipped = sorted(line for line in out.splitlines() if line.startswith("Skipping "))
    assert [line.split(": ")[0] for line in skipped] == [f"Skipping {root / 'train' / name}" for name in
                                                        ("Cut - Short.stem.mp4", "Not - Audio.stem.mp4")]
    assert "1 training songs" in out and "2 left out (see above)" in out
    assert checksums(root) == before


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="file names there are always valid Unicode")
def test_a_song_whose_folder_name_is_not_utf8_is_used(toy_root, tmp_path, capsys):
    """Found by tests/test_properties.py: the split's hold-out order encoded names as UTF-8 (a traceback)."""
    root = copy_root(toy_root, tmp_path)
    first = train_songs(root)[0]
    os.rename(first, os.path.join(os.fsencode(root / "train"), b"caf\xe9 song"))
    train_on(root, tmp_path)
    out = capsys.readouterr().out
    assert "Skipping" not in out and "left out" not in out
    assert "3 training songs" in out and "1 validation songs" in out  # all four songs used
    assert (tmp_path / "ckpt" / "best_model.pth").is_file()


def test_a_folder_that_is_not_a_song_is_named_and_left_out(toy_root, tmp_path, capsys):
    root = copy_root(toy_root, tmp_path)
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / ".ipynb_checkpoints" / "notes.ipynb").write_text("{}")
    data.main(["--root", str(root), "--n-songs", "all"])
    out = capsys.readouterr().out
    assert f"Skipping {root / 'train' / '.ipynb_checkpoints'}: not a song" in out and "train:        3 songs" in out
    train_on(root, tmp_path)
    assert "Skipping " in capsys.readouterr().out


def test_a_split_with_no_usable_song_left_is_one_line(toy_root, tmp_path, capsys):
    root = copy_root(toy_root, tmp_path)
    for folder in train_songs(root)[1:]:
        (folder / "vocals.wav").unlink()
    with pytest.raises(SystemExit) as stop:
        train_on(root, tmp_path)
    assert str(stop.value.code) == f"error: {root} has a single usable training song; validation needs at least two"
    assert capsys.readouterr().out.count("Skipping ") == 3


# --- Worker processes that die ---


# --- Advice that fits the cause ---

def test_a_batch_larger_than_an_epoch_is_a_warning_with_the_steps_per_epoch(toy_root, tmp_path, capsys):
    train_on(toy_root, tmp_path, "--batch-size", "1000")
    out = capsys.readouterr().out
    assert "Warning: --batch-size 1000 is more than the 6 patches of an epoch, so each epoch is a single step" in out


def test_a_run_at_lr_1_ends_at_the_constant_mask_and_is_told_to_lower_it(toy_root, tmp_path, capsys):
    train_on(toy_root, tmp_path, "--lr", "1", "--epochs", "2")
    out = capsys.readouterr().out
    assert "the model has not learned; --lr 1 is high (the default is 1e-3): lower it." in out


# --- Run without the project's packages ---

@pytest.mark.parametrize("script", ["train.py", "inference.py", "evaluate.py", "data.py", "unet_model.py"])
def test_a_script_run_without_its_packages_says_how_to_install_them(script, tmp_path):
    run = subprocess.run([sys.executable, "-S", "-s", os.path.join(PROJECT, script)], capture_output=True, text=True,
                         cwd=tmp_path, env={"PATH": os.environ.get("PATH", "")})  # -S: no site-packages
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert "are not installed for" in line and "pip install -r requirements.txt" in line
