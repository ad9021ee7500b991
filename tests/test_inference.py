"""inference.py and evaluate.py: files of any shape in, WAVs and a figure out, BSS Eval scores."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

import evaluate
import inference
from inference import load_model, separate, separate_file

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def noisy_song(seconds, rate, channels, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
    audio = tone[:, None] + 0.05 * rng.standard_normal((len(t), channels))
    return audio.astype(np.float32)


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
    assert sorted(os.listdir(out)) == ["accompaniment.wav", "separation.png", "vocals.wav"]
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


def test_separate_keeps_shape_and_sums_back(tiny_checkpoint):
    model, signal = load_model(tiny_checkpoint)
    mono = noisy_song(2.0, 16000, 1)[:, 0]
    vocals, accompaniment = separate(model, signal, mono, 16000)
    assert vocals.shape == accompaniment.shape == mono.shape
    np.testing.assert_allclose(vocals + accompaniment, mono, atol=1e-6)


def test_silent_input_gives_silent_outputs(tiny_checkpoint):
    model, signal = load_model(tiny_checkpoint)
    vocals, accompaniment = separate(model, signal, np.zeros((5000, 2), np.float32), 44100)
    assert vocals.shape == (5000, 2) and not vocals.any() and not accompaniment.any()


def test_long_songs_go_block_by_block_with_the_same_result(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "BLOCK_SECONDS", 6)
    monkeypatch.setattr(inference, "MARGIN_SECONDS", 12)
    rate = 8000
    mix = noisy_song(45.0, rate, 2)
    sf.write(tmp_path / "long.wav", mix, rate, subtype="FLOAT")
    model, signal = load_model(tiny_checkpoint)
    assert len(inference.plan_blocks(len(mix), rate, signal)) == 8
    separate_file(model, signal, str(tmp_path / "long.wav"), str(tmp_path / "out"), plot=True, quiet=True)
    vocals, _ = check_outputs(tmp_path / "out", mix, rate)
    whole, _ = separate(model, signal, mix, rate)
    assert np.abs(vocals - whole).max() < 2 / 32768  # the 16-bit rounding of the file, no more


def test_the_figure_has_three_spectrogram_panels(tiny_checkpoint):
    model, signal = load_model(tiny_checkpoint)
    _, _, info = separate(model, signal, noisy_song(3.0, 8192, 1), 8192, details=True)
    fig = inference.plot_separation(info["mix"], info["mask"], signal, "test")
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
    ("output is a file", "cannot write to"),
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


@pytest.mark.slow
def test_evaluate_scores_one_short_toy_track(toy_root, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "scores.json"
    evaluate.main(["--root", toy_root, "--checkpoint", tiny_checkpoint, "--n-tracks", "1", "--out", str(out),
                   "--estimates-dir", str(tmp_path / "est"), "--quiet"])
    scores = json.loads(out.read_text())
    (track,) = scores["tracks"]
    for method in evaluate.METHODS:
        for target in ("vocals", "accompaniment"):
            assert all(np.isfinite(v) for v in scores["tracks"][track][method][target].values())
    assert scores["median"]["oracle 8 kHz"]["vocals"]["SDR"] > scores["median"]["mixture"]["vocals"]["SDR"] + 3
    assert os.path.isfile(tmp_path / "est" / "test" / track / "vocals.wav")
    assert "MEDIAN over songs" in capsys.readouterr().out


def test_a_failed_separation_keeps_the_old_outputs(tiny_checkpoint, tmp_path, monkeypatch):
    rate = 8000
    sf.write(tmp_path / "song.wav", noisy_song(3.0, rate, 2), rate)
    out = tmp_path / "out"
    out.mkdir()
    (out / "vocals.wav").write_bytes(b"previous result")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the work

    monkeypatch.setattr(inference, "separate", crash)
    model, signal = load_model(tiny_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        separate_file(model, signal, str(tmp_path / "song.wav"), str(out), quiet=True)
    assert sorted(os.listdir(out)) == ["vocals.wav"]  # no temporary file, no half-written output
    assert (out / "vocals.wav").read_bytes() == b"previous result"


@pytest.mark.slow
def test_evaluate_scores_a_model_that_predicts_silence(toy_root, tiny_checkpoint, tmp_path, monkeypatch):
    # museval refuses an all-zero estimate; a model with an empty mask must still get a (bad) score.
    monkeypatch.setattr(inference, "compute_mask", lambda model, magnitude, *args: 0 * magnitude)
    out = tmp_path / "scores.json"
    evaluate.main(["--root", toy_root, "--checkpoint", tiny_checkpoint, "--n-tracks", "1", "--out", str(out),
                   "--quiet"])
    medians = json.loads(out.read_text())["median"]
    assert medians["U-Net"]["vocals"]["SIR"] < medians["oracle 8 kHz"]["vocals"]["SIR"]


def band_energy(audio, rate, low, high):
    spectrum = np.abs(np.fft.rfft(audio, axis=0)) ** 2
    hz = np.fft.rfftfreq(audio.shape[0], 1 / rate)
    return spectrum[(hz >= low) & (hz < high)].sum()


@pytest.mark.parametrize("rate", [44100, 8000])
def test_a_constant_mask_scales_the_whole_band_in_the_full_reconstruction(rate):
    from audio import SignalConfig

    signal = SignalConfig()
    mix = noisy_song(3.0, rate, 2)
    frames = mix.shape[0] * signal.sample_rate // rate // signal.hop_length + 3
    vocals = inference.full_band_vocals(mix, rate, torch.full((signal.freq_bins, frames), 0.3), signal)
    np.testing.assert_allclose(vocals, 0.3 * mix, atol=1e-5)


def test_only_the_full_reconstruction_keeps_the_vocals_above_4096_hz(tiny_checkpoint):
    model, signal = load_model(tiny_checkpoint)
    rate = 44100
    mix = noisy_song(4.0, rate, 2)  # a tone in white noise: energy up to 22 kHz
    kept = {}  # the share of the input's energy in 5-20 kHz that the vocals keep
    for reconstruction in ("full", "lab"):
        vocals, _ = separate(model, signal, mix, rate, reconstruction=reconstruction)
        kept[reconstruction] = band_energy(vocals, rate, 5000, 20000) / band_energy(mix, rate, 5000, 20000)
    assert kept["lab"] < 1e-6  # the lab's vocals stop at 4096 Hz
    assert kept["full"] > 0.01  # the full-band vocals go on (the mask there is that of 3-4 kHz)


def test_the_mask_is_interpolated_linearly_and_extended_above_the_model_band():
    from audio import SignalConfig

    signal = SignalConfig()
    synthesis = inference.synthesis_config(44100)
    assert (synthesis.n_fft, synthesis.hop_length) == (4096, 1024)
    bins, frames = torch.meshgrid(torch.arange(513.0), torch.arange(40.0), indexing="ij")
    mask = (bins / 512 + frames / 40) / 2  # linear in both axes
    out = inference.interpolate_mask(mask, signal, synthesis, frames=100)
    hz = torch.arange(synthesis.freq_bins) * 44100 / 4096
    seconds = torch.arange(100) * 1024 / 44100
    inside = hz <= 4096
    expected = (hz[inside, None] / 4096 + seconds[None] * 8192 / 768 / 40) / 2
    np.testing.assert_allclose(out[inside], expected, atol=1e-5)
    top = mask[round(3000 / 8):].mean(0)  # the mean of 3000-4096 Hz, per model frame
    np.testing.assert_allclose(out[~inside][:, 0], top[0], atol=1e-6)  # every bin above: that frame's mean


@pytest.mark.parametrize("n_fft, hop, samples, chunk_frames", [
    (4096, 1024, 30000, 7), (4096, 1024, 4096 * 3, 512), (1024, 256, 999, 2),
    (256, 32, 130, 3),  # 8 windows overlap, and the song is shorter than 7 hops
])
def test_the_chunked_masked_synthesis_is_the_istft_of_the_masked_stft(n_fft, hop, samples, chunk_frames):
    from audio import SignalConfig, istft, stft

    synthesis = SignalConfig(sample_rate=44100, n_fft=n_fft, hop_length=hop)
    waveform = torch.from_numpy(np.random.default_rng(3).standard_normal(samples).astype(np.float32))
    frames = 1 + samples // synthesis.hop_length
    mask = torch.from_numpy(np.random.default_rng(4).uniform(0, 1, (frames, synthesis.freq_bins)).astype(np.float32)).T
    expected = istft(stft(waveform, synthesis) * mask, synthesis, samples)
    out = inference.masked_synthesis(waveform, mask, synthesis, chunk_frames=chunk_frames)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_blocks_are_read_as_libsndfile_reads_them_as_float(tmp_path, subtype):
    path = str(tmp_path / "song.wav")
    sf.write(path, noisy_song(0.5, 8000, 2) * 3 - 0.2, 8000, subtype=subtype)  # past full scale: clipped in PCM
    expected, _ = sf.read(path, dtype="float32", always_2d=True)
    with sf.SoundFile(path) as f:
        block = inference.read_block(f, 100, 3000)
    assert block.dtype == np.float32 and block.shape == (2900, 2)
    np.testing.assert_array_equal(block, expected[100:3000])


def test_the_wiener_filter_of_a_mono_mix_is_the_power_ratio_mask():
    rng = np.random.default_rng(0)
    spec = rng.standard_normal((1, 30, 50)) + 1j * rng.standard_normal((1, 30, 50))  # (C, F, T)
    spec = torch.from_numpy(spec).to(torch.complex64)
    mask = torch.from_numpy(rng.uniform(0, 1, (30, 50)).astype(np.float32))
    vocals = inference.wiener_vocals(spec, mask, iterations=1, chunk_frames=7)
    expected = mask ** 2 / (mask ** 2 + (1 - mask) ** 2) * spec
    np.testing.assert_allclose(vocals.numpy(), expected.numpy(), atol=1e-5)


def test_the_wiener_filter_uses_where_the_sources_sit_in_the_stereo_image():
    # Vocals only on the left, accompaniment only on the right, and the mono ratio mask, which
    # puts part of each source in both channels: the spatial model learns where each one sits.
    rng = np.random.default_rng(1)
    left = rng.standard_normal((513, 64)) + 1j * rng.standard_normal((513, 64))
    right = rng.standard_normal((513, 64)) + 1j * rng.standard_normal((513, 64))
    true_vocals = np.stack([left, np.zeros_like(left)])  # (2, F, T)
    mix = torch.from_numpy(true_vocals + np.stack([np.zeros_like(right), right])).to(torch.complex64)
    mask = torch.from_numpy(np.abs(left) / (np.abs(left) + np.abs(right))).float()
    errors = [np.abs((mask * mix).numpy() - true_vocals).mean()]
    errors += [np.abs(inference.wiener_vocals(mix, mask, n).numpy() - true_vocals).mean() for n in (1, 2)]
    assert errors[1] < 0.7 * errors[0] and errors[2] < 0.9 * errors[1]  # each iteration helps


def test_the_wiener_post_filter_keeps_shape_and_sum(tiny_checkpoint):
    model, signal = load_model(tiny_checkpoint)
    for channels in (1, 2, 3):
        mix = noisy_song(2.0, 22050, channels)
        vocals, accompaniment = separate(model, signal, mix, 22050, wiener_iterations=2)
        assert vocals.shape == mix.shape and np.isfinite(vocals).all()
        np.testing.assert_allclose(vocals + accompaniment, mix, atol=1e-6)


def test_a_folder_is_separated_song_by_song_and_same_names_never_collide(tiny_checkpoint, tmp_path, capsys):
    songs = tmp_path / "songs"
    (songs / "live").mkdir(parents=True)
    for path in (songs / "a.wav", songs / "a.flac", songs / "live" / "a.wav", songs / "b.ogg"):
        sf.write(path, noisy_song(1.0, 16000, 2), 16000)
    (songs / "notes.txt").write_text("not audio")
    flags = ["--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out"), "--no-plot"]
    inference.main([str(songs), *flags])
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "a (wav)", "b"]  # a.flac first, then a.wav
    assert "shares its name with another input" in capsys.readouterr().out
    inference.main([str(songs), "--recursive", "--quiet", *flags])  # again: the same names, plus live/a.wav
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "a (2)", "a (wav)", "b"]
    assert sorted(os.listdir(tmp_path / "out" / "a (2)")) == ["accompaniment.wav", "vocals.wav"]


def test_a_missing_file_is_reported_before_any_song_is_separated(tiny_checkpoint, tmp_path):
    sf.write(tmp_path / "good.wav", noisy_song(1.0, 16000, 2), 16000)
    with pytest.raises(SystemExit) as exit_info:
        inference.main([str(tmp_path / "good.wav"), str(tmp_path / "typo.wav"), "--checkpoint", tiny_checkpoint,
                        "--out-dir", str(tmp_path / "out"), "--no-plot", "--quiet"])
    assert str(exit_info.value.code) == f"error: audio file not found: {tmp_path / 'typo.wav'}"
    assert not (tmp_path / "out").exists()  # good.wav, first in line, was not separated either


def test_quantize_rounds_to_the_nearest_step_and_counts_what_it_clips():
    lsb = 2.0 ** -15
    audio = np.array([[0.4 * lsb, 0.6 * lsb], [-1.0, 1.0], [1.6 * lsb, -0.99999], [1.2, -1.2]], dtype=np.float32)
    ints, over = inference.quantize(audio, 16)
    assert ints.dtype == np.int16 and ints.shape == audio.shape
    assert ints.tolist() == [[0, 1], [-32768, 32767], [2, -32768], [32767, -32768]]
    assert over == 3  # 1.0 is one step past the largest 16-bit value; 1.2 and -1.2
    ints, over = inference.quantize(audio[:1] / 256, 24)  # 24 bits: int32 with the value in the top 24 bits
    assert ints.dtype == np.int32 and (ints >> 8).tolist() == [[0, 1]] and over == 0
    assert inference.quantize(np.zeros((0, 2), np.float32), 16)[0].shape == (0, 2)


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
                                "--checkpoint", tiny_checkpoint, "--out-dir", str(out), "--no-plot"],
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
        "accompaniment.wav", "separation.png", "vocals.wav"]
    assert "caf\\udce9 song.wav: wrote" in capsys.readouterr().out  # printed, not a UnicodeEncodeError


def test_ctrl_c_during_evaluation_says_one_line_exits_130_and_writes_no_scores(toy_root, tiny_checkpoint, tmp_path,
                                                                              monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "evaluate_track", interrupted)
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--root", toy_root, "--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "s.json")])
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip().startswith("Interrupted: no scores written to")
    assert os.listdir(tmp_path) == []


def test_an_interrupt_while_the_figure_is_drawn_leaves_no_part_of_the_song(tiny_checkpoint, tmp_path, monkeypatch):
    sf.write(tmp_path / "song.wav", noisy_song(2.0, 16000, 2), 16000)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(inference, "plot_separation", interrupted)
    model, signal = load_model(tiny_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        separate_file(model, signal, str(tmp_path / "song.wav"), str(tmp_path / "out" / "song"), quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["song.wav"]  # the audio files go with the figure, and the folders


@pytest.mark.parametrize("frames", [40, 128, 301])
def test_the_whole_song_pass_and_the_patches_give_masks_of_the_song_shape(tiny_checkpoint, frames):
    model, signal = load_model(tiny_checkpoint)
    magnitude = torch.rand(signal.freq_bins, frames)
    whole = inference.compute_mask(model, magnitude, signal.patch_frames, "whole")
    patches = inference.compute_mask(model, magnitude, signal.patch_frames, "patches")
    assert whole.shape == patches.shape == (signal.freq_bins, frames)
    assert 0 <= whole.min() and whole.max() <= 1
    if frames <= signal.patch_frames:  # one patch, padded alike: the two ways are the same computation
        assert torch.allclose(whole, patches, atol=1e-6)
    else:
        # Where the first patch alone counts and sees what the whole pass sees, the masks agree; the
        # last patch (frames 173-300) sits on another phase of the stride-2 grid, so there they differ.
        assert torch.allclose(whole[:, :50], patches[:, :50], atol=1e-5)
        assert not torch.allclose(whole[:, 200:], patches[:, 200:], atol=1e-3)
