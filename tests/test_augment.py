"""augment.py: each source's pitch and tempo shifted in the time domain, the mix still the sum of its parts."""

import math

import numpy as np
import pytest
import torch

from audio import SignalConfig, stft
from augment import PitchTempo, shift
from data import PatchDataset

CONFIG = SignalConfig()
FRAMES = 16  # a short patch keeps the tests fast; nothing in augment.py depends on 128


def tone_spec(hz, seconds=12.0, start=0.0, stop=None):
    """The model's STFT (F, T) of a sine at `hz`, sounding from `start` to `stop` seconds."""
    t = torch.arange(int(seconds * CONFIG.sample_rate), dtype=torch.float64) / CONFIG.sample_rate
    on = (t >= start) & (t < (stop if stop is not None else seconds))
    return stft((0.5 * torch.sin(2 * math.pi * hz * t) * on).float(), CONFIG)


def peak_hz(spec):
    """The frequency of the strongest bin of the mean magnitude, refined by a parabola through its neighbours."""
    m = spec.abs().mean(-1).log()
    k = int(m.argmax())
    offset = 0.5 * (m[k - 1] - m[k + 1]) / (m[k - 1] - 2 * m[k] + m[k + 1])
    return (k + offset.item()) * CONFIG.sample_rate / CONFIG.n_fft


@pytest.mark.parametrize("semitones", [-2.0, -0.5, 1.0, 2.0])
@pytest.mark.parametrize("tempo", [0.8, 1.2])
def test_a_sine_moves_by_the_pitch_asked_whatever_the_tempo(semitones, tempo):
    crop = tone_spec(440.0)[:, 3:3 + PitchTempo(CONFIG, 2, 0.2, 1).frames_needed(FRAMES)]
    out = shift(crop, 2 ** (semitones / 12), tempo, FRAMES, CONFIG)
    assert out.shape == (CONFIG.freq_bins, FRAMES) and out.dtype == torch.complex64
    assert peak_hz(out) == pytest.approx(440.0 * 2 ** (semitones / 12), rel=3e-3)
    # and its loudness stays: the energy per frame (Parseval: whatever bins the sine falls between)
    energy = (out.abs() ** 2).sum(0)
    assert energy.mean().item() == pytest.approx((crop.abs() ** 2).sum(0).mean().item(), rel=0.02)


@pytest.mark.parametrize("pitch", [2 ** (-2 / 12), 1.0, 2 ** (2 / 12)])
def test_a_tempo_change_moves_two_onsets_closer_or_apart_by_the_factor_asked(pitch):
    hop_seconds = CONFIG.hop_length / CONFIG.sample_rate
    frames = 80  # 7.5 s
    spec = tone_spec(300.0, seconds=20.0, start=1.0, stop=2.0) + tone_spec(300.0, seconds=20.0, start=5.0)
    crop = spec[:, :PitchTempo(CONFIG, 2, 0.25, 1).frames_needed(frames)]
    for tempo in (0.8, 1.25):
        energy = shift(crop, pitch, tempo, frames, CONFIG).abs().sum(0)  # (frames,)
        onsets = np.flatnonzero(np.diff((energy > energy.max() / 2).numpy().astype(int)) == 1)
        seconds_apart = (onsets[1] - onsets[0]) * hop_seconds
        assert seconds_apart == pytest.approx(4.0 / tempo, abs=2 * hop_seconds)


def test_no_shift_gives_the_frames_back():
    spec = tone_spec(440.0) + 0.1 * tone_spec(1234.0)
    crop = spec[:, :FRAMES + 8]
    out = shift(crop, 1.0, 1.0, FRAMES, CONFIG)
    torch.testing.assert_close(out.abs(), crop[:, 2:2 + FRAMES].abs(), atol=1e-5, rtol=1e-4)
    unshifted = PitchTempo(CONFIG, 2, 0.2, probability=0.0)(crop.numpy(), FRAMES)
    np.testing.assert_array_equal(unshifted, crop[:, 2:2 + FRAMES].numpy())


def songs(n=3, frames=60, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((2, CONFIG.freq_bins, frames))
             + 1j * rng.standard_normal((2, CONFIG.freq_bins, frames))).astype(np.complex64) * 0.01
            for _ in range(n)]


def test_the_mix_stays_the_exact_sum_of_the_shifted_sources_and_the_patch_its_shape():
    shifts = PitchTempo(CONFIG, 2, 0.2, probability=1.0)
    dataset = PatchDataset(songs(), FRAMES, samples_per_track=4, augment=True, pitch_tempo=shifts)
    for index in range(6):
        torch.manual_seed(index)
        vocals, accompaniment = dataset.sources(index)
        torch.manual_seed(index)
        mix_mag, vocals_mag = dataset[index]
        assert vocals.shape == accompaniment.shape == (CONFIG.freq_bins, FRAMES)
        np.testing.assert_array_equal(mix_mag.numpy(), np.abs(vocals + accompaniment))
        np.testing.assert_array_equal(vocals_mag.numpy(), np.abs(vocals))


def test_the_shifts_are_drawn_from_the_seed_and_each_source_gets_its_own():
    shifts = PitchTempo(CONFIG, 2, 0.2, probability=1.0)
    features = [np.stack([f[0], f[0]]) for f in songs(1)]  # vocals and accompaniment the same signal
    dataset = PatchDataset(features, FRAMES, samples_per_track=1, augment=False, pitch_tempo=shifts)
    torch.manual_seed(3)
    first = dataset.sources(0)
    torch.manual_seed(3)
    again = dataset.sources(0)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(np.abs(first[0]), np.abs(first[1]))  # the same signal, shifted two ways
