"""What inference.py writes, and where it refuses to: formats that cannot hold the input."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

import inference
from conftest import noisy_song


def run(song, checkpoint, out_dir, *flags):
    inference.main([str(song), "--checkpoint", checkpoint, "--out-dir", str(out_dir), "--no-plot", "--quiet", *flags])


@pytest.mark.parametrize("channels, rate, message", [
    (12, 8000, "has 12 channels, which FLAC cannot hold: use --format wav"),
    (2, 705600, "is sampled at 705600 Hz, which FLAC cannot hold: use --format wav"),
])
def test_a_format_that_cannot_hold_the_input_is_refused_before_separating(tiny_checkpoint, tmp_path, channels, rate,
                                                                          message):
    sf.write(tmp_path / "song.wav", np.zeros((rate // 10, channels), np.float32), rate)
    with pytest.raises(SystemExit) as stop:
        run(tmp_path / "song.wav", tiny_checkpoint, tmp_path / "out", "--format", "flac")
    assert stop.value.code == f"error: {tmp_path / 'song.wav'} {message}"
    assert not (tmp_path / "out").exists()


def test_in_a_batch_the_song_no_format_holds_is_skipped_and_the_others_separated(tiny_checkpoint, tmp_path, capsys):
    songs = tmp_path / "songs"
    songs.mkdir()
    sf.write(songs / "a.wav", noisy_song(1.0, 8000, 2), 8000)
    sf.write(songs / "b.wav", noisy_song(1.0, 8000, 12), 8000)
    with pytest.raises(SystemExit) as stop:
        run(songs, tiny_checkpoint, tmp_path / "out", "--format", "flac")
    assert stop.value.code == "error: 1 of the songs could not be separated (see above)"
    assert "b.wav has 12 channels, which FLAC cannot hold: use --format wav; skipped it" in capsys.readouterr().err
    assert os.listdir(tmp_path / "out") == ["a"]


def test_an_output_never_replaces_a_file_the_project_did_not_write(tiny_checkpoint, tmp_path):
    song = tmp_path / "train" / "Some Song"  # a MUSDB18-HQ song folder: its vocals.wav is the reference
    song.mkdir(parents=True)
    for stem in ("mixture", "vocals"):
        sf.write(song / f"{stem}.wav", noisy_song(1.0, 8000, 2), 8000)
    reference = (song / "vocals.wav").read_bytes()
    with pytest.raises(SystemExit) as stop:
        run(song / "mixture.wav", tiny_checkpoint, tmp_path / "train")  # the song's outputs would go to its folder
    assert stop.value.code == (f"error: {song / 'vocals.wav'} was not written by this project (no separation.json "
                               "beside it lists it), so it is not replaced: give another --out-dir")
    assert sorted(os.listdir(song)) == ["mixture.wav", "vocals.wav"] and (song / "vocals.wav").read_bytes() == reference


def ctrl_c_after_the_first_temporary_file(monkeypatch, where):
    """Ctrl-C where a signal can land between a temporary file's creation and its clean-up being registered:
    as open() creates it inside files.atomic_path, or in ExitStack.enter_context after atomic_path yielded."""
    import builtins
    import contextlib

    import files

    if where == "creation":
        def open_then_interrupted(file, mode="r", *args, **kwargs):
            opened = builtins.open(file, mode, *args, **kwargs)
            if mode != "x":  # not atomic_path's creation of its temporary file
                return opened
            opened.close()
            raise KeyboardInterrupt
        monkeypatch.setattr(files, "open", open_then_interrupted, raising=False)
    else:
        def interrupted(self, cm, exit):
            raise KeyboardInterrupt
        monkeypatch.setattr(contextlib.ExitStack, "_push_cm_exit", interrupted)


@pytest.mark.parametrize("where", ["creation", "registration"])
def test_ctrl_c_as_a_temporary_file_appears_leaves_no_new_folder(tiny_checkpoint, tmp_path, monkeypatch, where):
    # The race of tests/test_inference.py's Ctrl-C test, made certain: there the signal is sent the
    # moment the first temporary file appears, which under load can land in either gap.
    sf.write(tmp_path / "song.wav", noisy_song(1.0, 8000, 2), 8000)
    model, signal = inference.load_model(tiny_checkpoint)
    ctrl_c_after_the_first_temporary_file(monkeypatch, where)
    with pytest.raises(KeyboardInterrupt):
        inference.separate_file(model, signal, str(tmp_path / "song.wav"), str(tmp_path / "new" / "out" / "song"))
    assert os.listdir(tmp_path) == ["song.wav"]


def test_a_run_without_the_figure_keeps_vouching_for_the_figure_an_earlier_run_made(tiny_checkpoint, tmp_path):
    """With the figure, then --no-plot, then the figure again: each run accepted (the second once refused the
    third: its record no longer listed separation.png)."""
    sf.write(tmp_path / "song.wav", noisy_song(2.0, 8000, 1), 8000)
    for flags in ([], ["--no-plot"], []):
        inference.main([str(tmp_path / "song.wav"), "--checkpoint", tiny_checkpoint, "--out-dir",
                        str(tmp_path / "out"), "--quiet", "--force", *flags])
    with open(tmp_path / "out" / "song" / "separation.json") as f:
        assert json.load(f)["files"] == ["vocals.wav", "accompaniment.wav", "separation.png"]
