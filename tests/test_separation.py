"""separation.py: the mask and the two reconstructions, on arrays."""

import numpy as np
import pytest
import torch

import separation
from spectral import SignalConfig
from checkpoints import load_model
from conftest import noisy_song
from separation import SeparationOptions, separate


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


def band_energy(audio, rate, low, high):
    spectrum = np.abs(np.fft.rfft(audio, axis=0)) ** 2
    hz = np.fft.rfftfreq(audio.shape[0], 1 / rate)
    return spectrum[(hz >= low) & (hz < high)].sum()


@pytest.mark.parametrize("rate", [44100, 8000])
def test_a_constant_mask_scales_the_whole_band_in_the_full_reconstruction(rate):
    signal = SignalConfig()
    mix = noisy_song(3.0, rate, 2)
    frames = mix.shape[0] * signal.sample_rate // rate // signal.hop_length + 3
    vocals = separation.full_band_vocals(mix, rate, torch.full((signal.freq_bins, frames), 0.3), signal)
    np.testing.assert_allclose(vocals, 0.3 * mix, atol=1e-5)


def test_only_the_full_reconstruction_keeps_the_vocals_above_4096_hz(tiny_checkpoint):
    model, signal = load_model(tiny_checkpoint)
    rate = 44100
    mix = noisy_song(4.0, rate, 2)  # a tone in white noise: energy up to 22 kHz
    kept = {}  # the share of the input's energy in 5-20 kHz that the vocals keep
    for reconstruction in ("full", "lab"):
        vocals, _ = separate(model, signal, mix, rate, SeparationOptions(reconstruction=reconstruction))
        kept[reconstruction] = band_energy(vocals, rate, 5000, 20000) / band_energy(mix, rate, 5000, 20000)
    assert kept["lab"] < 1e-6  # the lab's vocals stop at 4096 Hz
    assert kept["full"] > 0.01  # the full-band vocals go on (the mask there is that of 3-4 kHz)


def test_the_mask_is_interpolated_linearly_and_extended_above_the_model_band():
    signal = SignalConfig()
    synthesis = separation.synthesis_config(44100)
    assert (synthesis.n_fft, synthesis.hop_length) == (4096, 1024)
    bins, frames = torch.meshgrid(torch.arange(513.0), torch.arange(40.0), indexing="ij")
    mask = (bins / 512 + frames / 40) / 2  # linear in both axes
    out = separation.interpolate_mask(mask, signal, synthesis, frames=100)
    hz = torch.arange(synthesis.freq_bins) * 44100 / 4096
    seconds = torch.arange(100) * 1024 / 44100
    inside = hz <= 4096
    expected = (hz[inside, None] / 4096 + seconds[None] * 8192 / 768 / 40) / 2
    np.testing.assert_allclose(out[inside], expected, atol=1e-5)
    top = mask[round(3000 / 8):].mean(0)  # the mean of 3000-4096 Hz, per model frame
    np.testing.assert_allclose(out[~inside][:, 0], top[0], atol=1e-6)  # every bin above: that frame's mean


@pytest.mark.parametrize("frames", [40, 128, 301])
def test_the_whole_song_pass_and_the_patches_give_masks_of_the_song_shape(tiny_checkpoint, frames):
    model, signal = load_model(tiny_checkpoint)
    magnitude = torch.rand(signal.freq_bins, frames)
    whole = separation.compute_mask(model, magnitude, signal.patch_frames, "whole")
    patches = separation.compute_mask(model, magnitude, signal.patch_frames, "patches")
    assert whole.shape == patches.shape == (signal.freq_bins, frames)
    assert 0 <= whole.min() and whole.max() <= 1
    if frames <= signal.patch_frames:  # one patch, padded alike: the two ways are the same computation
        assert torch.allclose(whole, patches, atol=1e-6)
    else:
        # Where the first patch alone counts and sees what the whole pass sees, the masks agree; the
        # last patch (frames 173-300) sits on another phase of the stride-2 grid, so there they differ.
        assert torch.allclose(whole[:, :50], patches[:, :50], atol=1e-5)
        assert not torch.allclose(whole[:, 200:], patches[:, 200:], atol=1e-3)
