"""What inference.py writes, and where it refuses to: formats that cannot hold the input."""

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
