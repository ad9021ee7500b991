"""Degenerate validation songs (a cappella, silent vocals, a song shorter than a patch): every ratio and SDR
train.py writes is a number or undefined, never an exception."""

import csv
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import songs
import train
from files import STEMS
from test_train import tiny_args
from unet_model import UNet


def edited_toy(toy_root, tmp_path, edit, copies=0):
    """A copy of the tiny toy set, each training song's folder passed to edit(folder, validation), where
    `validation` is the song's rank among the validation songs (0, 1, ...), or None for a training song.
    `copies` more training songs (copies of the first under other names) make 2 validation songs from 7."""
    root = tmp_path / "edited"
    shutil.copytree(toy_root, root)
    first = sorted((root / "train").iterdir())[0]
    for i in range(copies):
        shutil.copytree(first, root / "train" / f"{first.name} copy {i + 1}")
    valid = sorted(track.name for track in songs.split_data(str(root), n_songs=None, quiet=True).valid)
    for folder in sorted((root / "train").iterdir()):
        edit(folder, valid.index(folder.name) if folder.name in valid else None)
    return str(root)


def rewrite(folder, **stems):
    """Replace stems of a toy song folder: stem=function of its int16 samples, or None for silence."""
    for name, change in stems.items():
        audio, rate = sf.read(folder / f"{name}.wav", dtype="int16")
        sf.write(folder / f"{name}.wav", np.zeros_like(audio) if change is None else change(audio), rate)


def read_stem(folder, name):
    return sf.read(folder / f"{name}.wav", dtype="int16")[0]


def a_cappella(folder, validation):  # the mix is the vocals: the best constant mask's loss is 0
    vocals = read_stem(folder, "vocals")
    rewrite(folder, drums=None, bass=None, other=None, mixture=lambda mix: vocals)


def silence_vocals(folder):
    vocals = read_stem(folder, "vocals")
    rewrite(folder, vocals=None, mixture=lambda mix: mix - vocals)


def history_of(save_dir):
    with open(save_dir / "history.csv") as f:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]


@pytest.mark.usefixtures("quick_figures")
def test_an_a_cappella_set_trains_to_the_end_with_a_perfect_oracle(toy_root, tmp_path, capsys):
    train.main(tiny_args(edited_toy(toy_root, tmp_path, a_cappella), tmp_path, "--epochs", "2"))
    assert "the constant-mask baseline is 0 here, so no ratio" in capsys.readouterr().out
    for row in history_of(tmp_path / "ckpt"):
        assert row["constant_mask_loss"] == 0.0
        assert row["mixture_sdr"] > 60 and row["oracle_sdr"] > 60  # both estimates are the vocals exactly
        assert math.isfinite(row["valid_sdr"])


@pytest.mark.usefixtures("quick_figures")
def test_silent_vocals_in_a_validation_song_leave_it_out_of_the_median(toy_root, tmp_path):
    def edit(folder, validation):
        if validation == 0:
            silence_vocals(folder)

    root = edited_toy(toy_root, tmp_path, edit, copies=3)
    assert len(songs.split_data(root, n_songs=None, quiet=True).valid) == 2
    train.main(tiny_args(root, tmp_path, "--epochs", "1"))
    (row,) = history_of(tmp_path / "ckpt")
    assert all(math.isfinite(row[key]) for key in ("valid_sdr", "mixture_sdr", "oracle_sdr"))
    assert (tmp_path / "ckpt" / "best_model.pth").is_file()


@pytest.mark.usefixtures("quick_figures")
def test_all_validation_vocals_silent_and_a_song_shorter_than_a_patch_train_to_the_end(toy_root, tmp_path, capsys):
    def edit(folder, validation):
        if validation is not None:
            silence_vocals(folder)
        if validation == 0:  # 3 s, a quarter of a patch
            rewrite(folder, **{stem: (lambda x: x[:3 * 11025]) for stem in ("mixture", *STEMS)})

    root = edited_toy(toy_root, tmp_path, edit)
    train.main(tiny_args(root, tmp_path, "--epochs", "2"))
    out = capsys.readouterr().out
    assert "mixture n/a (the floor), oracle ratio mask n/a" in out and "SDR n/a" in out
    assert "no validation SDR (the validation songs' vocals are silent)" in out
    assert all(math.isnan(row["valid_sdr"]) for row in history_of(tmp_path / "ckpt"))
    assert (tmp_path / "ckpt" / "best_model.pth").is_file()  # by the loss, which is defined


class MaskOfOnes(UNet):
    """A U-Net whose mask is 1 everywhere (its estimate is the mixture), still trainable."""

    def forward(self, x):
        return torch.ones_like(x) + 0 * super().forward(x)


@pytest.mark.parametrize("edit", [None, a_cappella])
@pytest.mark.usefixtures("quick_figures")
def test_the_sdr_written_for_the_mixture_is_the_mixture_row_and_for_an_exact_estimate_very_high(
        toy_root, tmp_path, monkeypatch, edit):
    monkeypatch.setattr(train, "UNet", MaskOfOnes)
    root = edited_toy(toy_root, tmp_path, edit) if edit else toy_root
    train.main(tiny_args(root, tmp_path, "--epochs", "1"))
    (row,) = history_of(tmp_path / "ckpt")
    assert row["valid_sdr"] == row["mixture_sdr"]
    if edit:  # a cappella: the mixture is the vocals, an exact estimate
        assert row["valid_sdr"] > 60
    else:
        assert row["valid_sdr"] < 5 < row["oracle_sdr"]
