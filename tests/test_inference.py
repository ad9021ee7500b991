"""inference.py: files of any shape in, WAVs and a figure out."""

import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

import inference
import separation
from conftest import noisy_song
from inference import load_model, separate, separate_file
from separation import predict_mask

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_outputs(out_dir, mix, rate):
    vocals, r1 = sf.read(os.path.join(out_dir, "vocals.wav"), dtype="float32", always_2d=True)
    accompaniment, r2 = sf.read(os.path.join(out_dir, "accompaniment.wav"), dtype="float32", always_2d=True)
    assert r1 == r2 == rate
    assert vocals.shape == accompaniment.shape == mix.shape
    # 16-bit files: each output is rounded once, so the sum is within 2 steps of the input.
    assert np.abs(vocals + accompaniment - mix).max() <= 2.5 / 32768
    share = np.square(vocals).sum() / np.square(mix).sum()
    assert 0.01 < share < 1.01  # a mask in [0, 1]: the vocals hold part of the input's energy, not more
    return vocals, accompaniment


def test_default_cli_on_a_toy_track_writes_figure_and_wavs(toy_root, tiny_checkpoint, tmp_path, capsys):
    inference.main(["--root", toy_root, "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path), "--quiet"])
    (song,) = os.listdir(tmp_path)
    assert "test" in song  # the first test song
    out = tmp_path / song
    assert sorted(os.listdir(out)) == ["accompaniment.wav", "separation.json", "separation.png", "vocals.wav"]
    mix, rate = sf.read(os.path.join(toy_root, "test", song, "mixture.wav"), dtype="float32", always_2d=True)
    check_outputs(out, mix, rate)


@pytest.mark.parametrize("rate, channels", [(22050, 1), (48000, 2), (8000, 8)])
def test_any_rate_and_channel_count(tiny_checkpoint, tmp_path, rate, channels):
    path = tmp_path / f"in {rate} é.wav"  # spaces and non-ASCII in the name
    mix = noisy_song(3.0, rate, channels)
    sf.write(path, mix, rate, subtype="FLOAT")
    model, signal = load_model(tiny_checkpoint)
    written, clipped = separate_file(model, signal, str(path), str(tmp_path / "out"), plot=False, quiet=True)
    assert len(written) == 2 and clipped == 0
    check_outputs(tmp_path / "out", mix, rate)


def test_long_songs_go_block_by_block_with_the_same_result(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(separation, "BLOCK_SECONDS", 6)
    monkeypatch.setattr(separation, "MARGIN_SECONDS", 12)
    rate = 8000
    mix = noisy_song(45.0, rate, 2)
    sf.write(tmp_path / "long.wav", mix, rate, subtype="FLOAT")
    model, signal = load_model(tiny_checkpoint)
    assert len(separation.plan_blocks(len(mix), rate, signal)) == 8
    separate_file(model, signal, str(tmp_path / "long.wav"), str(tmp_path / "out"), plot=True, quiet=True)
    vocals, _ = check_outputs(tmp_path / "out", mix, rate)
    whole, _ = separate(model, signal, mix, rate)
    assert np.abs(vocals - whole).max() < 2 / 32768  # the 16-bit rounding of the file, no more


def test_the_figure_has_three_spectrogram_panels(tiny_checkpoint):
    model, signal = load_model(tiny_checkpoint)
    mix, mask = predict_mask(model, signal, noisy_song(3.0, 8192, 1), 8192)
    fig = inference.plot_separation(mix, mask, signal, "test")
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["Mix", "Predicted vocals mask", "Estimated vocals (mask x mix)"]
    assert all(ax.get_ylabel() == "frequency (Hz)" for ax in panels)
    assert panels[-1].get_xlabel() == "time (s)"


def test_the_real_stem_excerpt_goes_through_ffmpeg(tiny_checkpoint, stem_file, tmp_path):
    inference.main(["--input", stem_file, "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path),
                    "--no-plot", "--quiet"])
    vocals, rate = sf.read(tmp_path / "The Easton Ellises - Falcon 69" / "vocals.wav")
    assert rate == 44100 and vocals.shape[1] == 2 and vocals.shape[0] > 5 * 44100


@pytest.mark.parametrize("case, message", [
    ("missing checkpoint", "does not exist: train a model first"),
    ("not a checkpoint", "not a readable checkpoint"),
    ("old checkpoint", "checkpoint format 99"),
    ("not audio", "not an audio file"),
    ("empty audio", "holds no audio samples"),
    ("missing audio", "audio file not found"),
    ("output is a file", "cannot write "),
])
def test_user_mistakes_end_in_one_sentence(case, message, tiny_checkpoint, tmp_path):
    import torch

    song = tmp_path / "song.wav"
    sf.write(song, noisy_song(1.0, 8000, 1), 8000)
    checkpoint, out_dir = tiny_checkpoint, tmp_path / "out"
    if case == "missing checkpoint":
        checkpoint = str(tmp_path / "nope.pth")
    elif case == "not a checkpoint":
        checkpoint = str(tmp_path / "junk.pth")
        (tmp_path / "junk.pth").write_bytes(open(tiny_checkpoint, "rb").read()[:500])  # truncated
    elif case == "old checkpoint":
        state = torch.load(tiny_checkpoint, weights_only=True)
        checkpoint = str(tmp_path / "old.pth")
        torch.save({**state, "format": 99}, checkpoint)
    elif case == "not audio":
        song.write_text("this is not audio\n" * 100)
    elif case == "empty audio":
        sf.write(song, np.zeros((0, 1)), 8000)
    elif case == "missing audio":
        song = tmp_path / "missing.wav"
    elif case == "output is a file":
        out_dir.write_text("a file, not a folder")
    with pytest.raises(SystemExit) as exit_info:
        inference.main([str(song), "--checkpoint", checkpoint, "--out-dir", str(out_dir), "--quiet"])
    assert message in str(exit_info.value.code) and str(exit_info.value.code).startswith("error: ")
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
    if os.path.isdir(out_dir):
        leftovers += os.listdir(out_dir / "song") if os.path.isdir(out_dir / "song") else []
    assert not leftovers


def test_a_failed_separation_keeps_the_old_outputs(tiny_checkpoint, tmp_path, monkeypatch):
    rate = 8000
    sf.write(tmp_path / "song.wav", noisy_song(3.0, rate, 2), rate)
    out = tmp_path / "out"
    out.mkdir()
    (out / "vocals.wav").write_bytes(b"previous result")
    (out / "separation.json").write_text('{"files": ["vocals.wav"]}')  # a result of this project's: replaceable

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the work

    monkeypatch.setattr(inference, "reconstruct", crash)
    model, signal = load_model(tiny_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        separate_file(model, signal, str(tmp_path / "song.wav"), str(out), quiet=True)
    assert sorted(os.listdir(out)) == ["separation.json", "vocals.wav"]  # no temporary file, no half-written output
    assert (out / "vocals.wav").read_bytes() == b"previous result"


@pytest.mark.parametrize("audio_format, bit_depth", [("wav", "16"), ("flac", "16"), ("wav", "24"), ("flac", "24"),
                                                     ("wav", "32f")])
def test_every_format_sums_back_to_the_input_within_one_step(tiny_checkpoint, tmp_path, audio_format, bit_depth):
    mix = noisy_song(2.0, 44100, 2)
    sf.write(tmp_path / "song.wav", mix, 44100, subtype="FLOAT")
    inference.main([str(tmp_path / "song.wav"), "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path),
                    "--format", audio_format, "--bit-depth", bit_depth, "--no-plot", "--quiet"])
    parts = [sf.read(tmp_path / "song" / f"{name}.{audio_format}", dtype="float64", always_2d=True)[0]
             for name in ("vocals", "accompaniment")]
    step = 2.0 ** -23 if bit_depth == "32f" else 2.0 ** (1 - int(bit_depth))  # one LSB (float: its rounding)
    assert np.abs(parts[0] + parts[1] - mix).max() <= step * 1.0001
    assert sf.info(tmp_path / "song" / f"vocals.{audio_format}").subtype == inference.SUBTYPES[bit_depth][0]


def test_a_loud_input_clips_in_16_bits_with_a_warning_but_not_in_float(tiny_checkpoint, tmp_path, capsys):
    loud = 10 * noisy_song(2.0, 16000, 1)  # peaks far above full scale, as a float WAV can
    sf.write(tmp_path / "loud.wav", loud, 16000, subtype="FLOAT")
    flags = [str(tmp_path / "loud.wav"), "--checkpoint", tiny_checkpoint, "--no-plot", "--quiet"]
    inference.main([*flags, "--out-dir", str(tmp_path / "16")])
    warning = capsys.readouterr().out
    assert "were clipped" in warning and "--bit-depth 32f" in warning
    inference.main([*flags, "--out-dir", str(tmp_path / "32f"), "--bit-depth", "32f"])
    assert "clipped" not in capsys.readouterr().out
    parts = [sf.read(tmp_path / "32f" / "loud" / f"{name}.wav", always_2d=True)[0] for name in ("vocals",
                                                                                                "accompaniment")]
    assert np.abs(parts[0] + parts[1] - loud).max() < 1e-5


@pytest.mark.slow
def test_ctrl_c_during_separation_says_one_line_exits_130_and_leaves_nothing(tiny_checkpoint, tmp_path):
    sf.write(tmp_path / "long.wav", noisy_song(400.0, 16000, 2), 16000)  # two blocks
    out = tmp_path / "new" / "outputs"
    process = subprocess.Popen([sys.executable, os.path.join(PROJECT, "inference.py"), str(tmp_path / "long.wav"),
                                "--cpu", "--checkpoint", tiny_checkpoint, "--out-dir", str(out), "--no-plot"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not glob.glob(str(out / "long" / ".tmp-*")):  # the outputs are being written
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert stderr.strip().splitlines() == [f"Interrupted: {tmp_path / 'long.wav'} was not written."]
    assert not (tmp_path / "new").exists()  # the folders it made are gone with the partial files


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="file names there are always valid Unicode")
def test_a_file_name_that_is_not_utf8_is_separated(tiny_checkpoint, tmp_path, capsys):
    name = os.fsdecode(b"caf\xe9 song.wav")  # Latin-1 bytes: Python keeps the stray byte as a surrogate
    sf.write(os.fsencode(tmp_path / "x.wav"), noisy_song(1.0, 16000, 1), 16000)
    os.rename(tmp_path / "x.wav", tmp_path / name)
    inference.main([str(tmp_path / name), "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out")])
    assert sorted(os.listdir(tmp_path / "out" / os.fsdecode(b"caf\xe9 song"))) == [
        "accompaniment.wav", "separation.json", "separation.png", "vocals.wav"]
    assert "caf\\udce9 song.wav: wrote" in capsys.readouterr().out  # printed, not a UnicodeEncodeError


def test_an_interrupt_while_the_figure_is_drawn_leaves_no_part_of_the_song(tiny_checkpoint, tmp_path, monkeypatch):
    sf.write(tmp_path / "song.wav", noisy_song(2.0, 16000, 2), 16000)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(inference, "plot_separation", interrupted)
    model, signal = load_model(tiny_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        separate_file(model, signal, str(tmp_path / "song.wav"), str(tmp_path / "out" / "song"), quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["song.wav"]  # the audio files go with the figure, and the folders


def test_the_figure_of_a_long_song_shows_the_span_its_title_names(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(separation, "BLOCK_SECONDS", 6)
    monkeypatch.setattr(separation, "MARGIN_SECONDS", 12)
    sf.write(tmp_path / "long.wav", noisy_song(45.0, 8000, 1), 8000)
    drawn = {}
    monkeypatch.setattr(inference, "plot_separation", lambda mix, mask, signal, title, *rest, **kwargs: drawn.update(
        seconds=mix.shape[-1] * signal.hop_length / signal.sample_rate, title=title, mask=mask.shape))
    model, signal = load_model(tiny_checkpoint)
    separate_file(model, signal, str(tmp_path / "long.wav"), str(tmp_path / "out"), quiet=True)
    assert drawn["title"] == "out (first 6 s of 45 s) \N{EM DASH} tiny.pth (epoch 0)"  # the model's checkpoint too
    assert 6 <= drawn["seconds"] < 6 + signal.hop_length / signal.sample_rate  # the first block, not its margin
    assert drawn["mask"][-1] == round(drawn["seconds"] * signal.sample_rate / signal.hop_length)


