"""The separation figure: separation.png (inference.py) and its TensorBoard twin (reports.log_example)."""

import os
import shutil
import types

import numpy as np
import pytest
import soundfile as sf
import torch

import inference
import reports
from checkpoints import load_model
from conftest import noisy_song
from figures import separation_panels

PANELS = ["Mix", "Predicted vocals mask", "Estimated vocals (mask x mix)"]


def drawn_figures(monkeypatch):
    """The figures inference.plot_separation draws from now on."""
    figures, real = [], inference.plot_separation
    monkeypatch.setattr(inference, "plot_separation", lambda *args, **kwargs: figures.append(real(*args, **kwargs)))
    return figures


def panels_of(fig):
    return [ax for ax in fig.axes if ax.images]


def separate(song, checkpoint, out_dir):
    inference.main([str(song), "--checkpoint", checkpoint, "--out-dir", str(out_dir), "--quiet"])


def test_a_data_set_song_shows_its_true_vocals_and_the_checkpoint_in_the_title(tiny_checkpoint, tmp_path,
                                                                               monkeypatch):
    song = tmp_path / "Some Song"  # MUSDB18-HQ: the true vocals beside the mix
    song.mkdir()
    sf.write(song / "mixture.wav", noisy_song(2.0, 16000, 2), 16000)
    shutil.copy(song / "mixture.wav", song / "vocals.wav")  # vocals = mix: the two panels must be the same
    figures = drawn_figures(monkeypatch)
    separate(song / "mixture.wav", tiny_checkpoint, tmp_path / "out")
    (fig,) = figures
    panels = panels_of(fig)
    assert [ax.get_title() for ax in panels] == PANELS + ["True vocals"]
    np.testing.assert_array_equal(panels[3].images[0].get_array(), panels[0].images[0].get_array())
    assert panels[3].images[0].get_clim() == panels[2].images[0].get_clim()  # the estimate's colour scale
    assert fig._suptitle.get_text() == "Some Song \N{EM DASH} tiny.pth (epoch 0)"


def test_the_default_song_and_a_stem_file_have_four_panels(toy_root, stem_file, tiny_checkpoint, tmp_path,
                                                            monkeypatch):
    figures = drawn_figures(monkeypatch)
    inference.main(["--root", toy_root, "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path), "--quiet"])
    separate(stem_file, tiny_checkpoint, tmp_path)  # the vocals are its stream 4
    assert [len(panels_of(fig)) for fig in figures] == [4, 4]
    assert figures[1]._suptitle.get_text() == "The Easton Ellises - Falcon 69 \N{EM DASH} tiny.pth (epoch 0)"


def test_a_song_without_known_vocals_has_three_panels_and_names_the_checkpoint(tiny_checkpoint, tmp_path,
                                                                                monkeypatch):
    sf.write(tmp_path / "song.wav", noisy_song(2.0, 16000, 2), 16000)
    state = torch.load(tiny_checkpoint, weights_only=True)
    torch.save({**state, "epoch": 7}, tmp_path / "best_model.pth")
    figures = drawn_figures(monkeypatch)
    separate(tmp_path / "song.wav", str(tmp_path / "best_model.pth"), tmp_path / "out")
    (fig,) = figures
    assert [ax.get_title() for ax in panels_of(fig)] == PANELS
    assert fig._suptitle.get_text() == "song \N{EM DASH} best_model.pth (epoch 7)"
    assert os.path.isfile(tmp_path / "out" / "song" / "separation.png")


def test_tensorboard_shows_the_same_panels(tiny_checkpoint):
    model, signal = load_model(tiny_checkpoint)
    rng = np.random.default_rng(0)
    patch = (rng.standard_normal((2, signal.freq_bins, 64)) + 1j * rng.standard_normal((2, signal.freq_bins, 64)))
    logged = {}
    log = types.SimpleNamespace(add=lambda line, method, tag, value, *args, **kwargs:
                                logged.update(fig=value) if method == "add_figure" else None)
    reports.log_example(log, model, patch.astype(np.complex64), signal, torch.device("cpu"), 1)
    expected = [title for title, _, _ in separation_panels(*[torch.ones(2, 2)] * 3)]
    titles = [ax.get_title() for ax in panels_of(logged["fig"])]
    assert titles == [title.split(" (")[0] for title in expected]  # on the grid, without the parenthesis
    assert logged["fig"].get_size_inches()[0] <= 6.4  # small, so that its text reads at a card's width


@pytest.mark.parametrize("name, expected", [("mixture.wav", ("vocals.wav", 0)), ("song.stem.mp4", ("song.stem.mp4", 4)),
                                            ("song.wav", None)])
def test_known_vocals(tmp_path, name, expected):
    from files import known_vocals

    (tmp_path / "vocals.wav").write_bytes(b"")
    found = known_vocals(str(tmp_path / name))
    assert found == (None if expected is None else (str(tmp_path / expected[0]), expected[1]))
