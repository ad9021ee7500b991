"""Shared fixtures: a tiny toy MUSDB set and the real excerpt shipped with stempeg."""

import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The suite runs on the CPU by design, wherever it runs: what it checks (the "Device: cpu" line, bit-equal
# reruns with one seed) is the CPU's, and no GPU or Mac has ever run it. CUDA reads CUDA_VISIBLE_DEVICES
# when it starts, so this hides the GPUs from this process and from every subprocess the tests start;
# Apple's MPS has no such variable, so the fixture below hides both in this process, and a test that starts
# train.py or inference.py in a subprocess passes --cpu.
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import toy_set  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: several seconds each (subprocesses, museval); "
                                       "the default run runs them too, `-m 'not slow'` skips them")


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    """No accelerator in this process, whatever the machine has (see CUDA_VISIBLE_DEVICES above)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def quick_figures(monkeypatch):
    """Training runs whose figures no test here looks at: a blank loss curve and no example figure or audio
    (drawing them is most of a tiny run's time: about 1.5 s of its first epoch). test_train.py and
    test_docs.py keep the real ones and check them."""
    import matplotlib.pyplot as plt

    import reports

    monkeypatch.setattr(reports, "loss_curve_figure", lambda history, best_epoch=None: plt.figure(figsize=(1, 1)))
    monkeypatch.setattr(reports, "log_example", lambda *args, **kwargs: None)


def noisy_song(seconds, rate, channels, seed=0):
    """A 220 Hz tone, swelling and fading every 2 s, over white noise: float32 (samples, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
    audio = tone[:, None] + 0.05 * rng.standard_normal((len(t), channels))
    return audio.astype(np.float32)


def ffmpeg(*args):
    """Run the ffmpeg that audio.find_ffmpeg puts on PATH (the system's, or the wheel's)."""
    from audio import find_ffmpeg

    assert find_ffmpeg()
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def joined_files(folder, codec=("libmp3lame", "-q:a", "4"), extension="mp3"):
    """Two VBR files (MP3 by default) of 4 s and 6 s at 8 kHz joined with `cat`, as podcasts and audiobooks
    are: the first one's header says 4 s."""
    parts = []
    for seconds, tone in ((4, 440), (6, 660)):
        parts.append(folder / f"{seconds}s.{extension}")
        ffmpeg("-f", "lavfi", "-i", f"sine=frequency={tone}:duration={seconds}:sample_rate=8000", "-c:a", *codec,
               str(parts[-1]))
    joined = folder / f"joined.{extension}"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    return joined


# 4 training songs and 2 test songs of 14 s at 11025 Hz: long enough for more
# than one 128-frame patch at 8192 Hz, small enough to build in about a second.
TINY_TOY = {"version": 1, "n_train": 4, "n_test": 2, "seconds": 14.0, "sample_rate": 11025, "seed": 7}


SHORT_TEST_SONGS = 3


@pytest.fixture(scope="session")
def short_test_root(tmp_path_factory):
    """A MUSDB18-HQ root of 3 test songs of 1 s at 8 kHz for evaluate.py, whose BSS Eval is the slow part, every
    stem audible (BSS Eval is undefined for a silent one): noise over a tone, the mixture their sum. Mono: for
    stereo BSS Eval solves a system four times larger, eight times slower."""
    root = tmp_path_factory.mktemp("short") / "musdb"
    for i in range(SHORT_TEST_SONGS):
        folder = root / "test" / f"song {i}"
        folder.mkdir(parents=True)
        stems = {name: 0.25 * noisy_song(1.0, 8000, 1, seed=10 * i + j)
                 for j, name in enumerate(("vocals", "drums", "bass", "other"))}
        for name, audio in [*stems.items(), ("mixture", sum(stems.values()))]:
            sf.write(folder / f"{name}.wav", audio, 8000, subtype="FLOAT")
    return str(root)


def built_toy_set(tmp_path_factory, name, settings):
    """The toy set of `settings`, built in a fresh temporary folder named `name`; its root."""
    root = str(tmp_path_factory.mktemp(name) / "musdb")
    toy_set.build_toy_musdb(root, settings=settings, quiet=True)
    return root


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    return built_toy_set(tmp_path_factory, "toy", TINY_TOY)


@pytest.fixture(scope="session")
def stem_file():
    # Found without importing stempeg, which refuses to import until ffmpeg is on PATH.
    folder = os.path.join(importlib.util.find_spec("stempeg").submodule_search_locations[0], "data")
    names = [n for n in os.listdir(folder) if n.endswith(".stem.mp4")]
    assert names, "stempeg no longer ships its MUSDB18 excerpt"
    return os.path.join(folder, names[0])


@pytest.fixture(scope="session")
def stem_root(tmp_path_factory, stem_file):
    """A MUSDB18 (stems) root holding only the real excerpt, under test/."""
    root = tmp_path_factory.mktemp("stems")
    (root / "test").mkdir()
    shutil.copy(stem_file, root / "test" / os.path.basename(stem_file))
    return str(root)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint in train.py's format holding an untrained 4-8-channel model."""
    import torch

    from spectral import SignalConfig
    from checkpoints import build_checkpoint, save_checkpoint
    from unet_model import UNet, UNetConfig

    torch.manual_seed(0)
    config = UNetConfig(channels=(4, 8))
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    save_checkpoint(path, build_checkpoint(UNet(config), config, SignalConfig(), epoch=0))
    return str(path)


def pytest_terminal_summary(terminalreporter):
    """The fault-injection summary of each command tested (tests/test_faults.py), passed or failed: the
    operations counted, the runs, and what misbehaved, grouped by cause."""
    checks = sys.modules.get("fault_checks")
    if checks is not None and checks.SUMMARY:
        terminalreporter.section("fault injection")
        for summary in checks.SUMMARY:
            terminalreporter.write_line(summary)
