"""The signal of spectral.py, on generated signals: STFT round trips, the magnitude scale, mono, and each
fast path beside the library version it stands for (resample: scipy's resample_poly; the chunked masked
synthesis: torch's istft of the masked stft)."""

import numpy as np
import pytest
import torch

from spectral import SignalConfig, istft, istft_of_masked_stft, magnitude_scale, resample, stft, to_mono


def test_stft_istft_gives_back_the_signal():
    signal = SignalConfig()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((2, 5 * 8192)).astype(np.float32))
    spec = stft(x, signal)
    assert spec.shape == (2, 513, 1 + x.shape[-1] // 768)
    y = istft(spec, signal, length=x.shape[-1])
    assert torch.max(torch.abs(x - y)) < 1e-4


def test_magnitude_scale_maps_the_peak_to_one_and_survives_silence():
    mag = torch.tensor([[0.0, 2.0], [4.0, 1.0]])
    assert magnitude_scale(mag) == pytest.approx(0.25)
    assert magnitude_scale(torch.zeros(3, 3)) == 1.0


@pytest.mark.parametrize("rate_in,rate_out", [(44100, 8192), (8192, 44100), (16000, 8192), (8192, 8192)])
def test_resample_keeps_a_sine_and_the_duration(rate_in, rate_out):
    t = np.arange(2 * rate_in) / rate_in
    x = np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1).astype(np.float32)
    y = resample(x, rate_in, rate_out)
    assert y.shape == (2 * rate_out, 2) and y.dtype == np.float32
    t_out = np.arange(len(y)) / rate_out
    expected = np.sin(2 * np.pi * 440 * t_out)
    middle = slice(rate_out // 4, -rate_out // 4)  # away from the filter's edge effects
    assert np.max(np.abs(y[middle, 0] - expected[middle])) < 1e-2


@pytest.mark.parametrize("rate_in,rate_out", [(44100, 8192), (8192, 44100), (48000, 8192), (22050, 8192),
                                               (8000, 8192)])
@pytest.mark.parametrize("samples", [1, 7, 10_007])
@pytest.mark.parametrize("channels", [None, 2])
def test_resample_gives_what_scipy_resample_poly_gives(rate_in, rate_out, samples, channels):
    # The features of every existing cache were made with scipy's resample_poly: same numbers,
    # same length, to float32 rounding.
    from math import gcd

    from scipy.signal import resample_poly

    shape = (samples,) if channels is None else (samples, channels)
    x = np.random.default_rng(samples).standard_normal(shape).astype(np.float32)
    g = gcd(rate_in, rate_out)
    expected = resample_poly(x, rate_out // g, rate_in // g, axis=0)
    y = resample(x, rate_in, rate_out)
    assert y.shape == expected.shape and y.dtype == np.float32
    assert np.max(np.abs(y - expected)) < 2e-6 * np.max(np.abs(expected))


def test_to_mono_is_the_channel_mean():
    x = np.array([[1.0, 3.0], [0.0, -2.0]], dtype=np.float32)
    assert np.allclose(to_mono(x), [2.0, -1.0])


@pytest.mark.parametrize("n_fft, hop, samples, chunk_frames", [
    (4096, 1024, 30000, 7), (4096, 1024, 4096 * 3, 512), (1024, 256, 999, 2),
    (256, 32, 130, 3),  # 8 windows overlap, and the song is shorter than 7 hops
])
def test_the_chunked_masked_synthesis_is_the_istft_of_the_masked_stft(n_fft, hop, samples, chunk_frames):
    synthesis = SignalConfig(sample_rate=44100, n_fft=n_fft, hop_length=hop)
    waveform = torch.from_numpy(np.random.default_rng(3).standard_normal(samples).astype(np.float32))
    frames = 1 + samples // synthesis.hop_length
    mask = torch.from_numpy(np.random.default_rng(4).uniform(0, 1, (frames, synthesis.freq_bins)).astype(np.float32)).T
    expected = istft(stft(waveform, synthesis) * mask, synthesis, samples)
    out = istft_of_masked_stft(waveform, mask, synthesis, chunk_frames=chunk_frames)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-5)
