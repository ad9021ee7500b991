"""How well the vocals are separated: the scores train.py logs every epoch and evaluate.py shares.

    global_sdr        the Music Demixing Challenge's SDR of a whole song
    model_sdr         the median global SDR of the network's vocals over train.py's
                      validation songs, from the feature cache: cheap enough for every epoch
    reference_sdr     the same for the mixture (the floor) and the oracle mask (the ceiling)
    ratio_mask        the ideal ratio mask |V| / (|V| + |A|): the oracle's
    finite_median     the median that skips undefined (NaN) scores

evaluate.py adds BSS Eval (museval), the MUSDB18 benchmark's scorer, on top.
"""

import math

import numpy as np
import torch

from spectral import istft
from separation import compute_mask

SDR_EPS = 1e-7  # global_sdr's floor on both energies (the Music Demixing Challenge's)


def global_sdr(reference, estimate, eps=SDR_EPS):
    """The Music Demixing Challenge's SDR of a whole song, in dB: 10 log10(sum s^2 / sum (s - s_hat)^2).

    One number per song, no windows: thousands of times cheaper than BSS Eval,
    so train.py can afford it every epoch (benchmarks/README.md shows how it
    tracks museval's). `eps` in both sums keeps an exact estimate finite
    (about 10 log10(sum s^2 / eps) dB, very high). A silent reference has no
    SDR at all: NaN, which every median here skips.
    """
    reference, estimate = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    signal = float(np.sum(reference ** 2))
    if signal == 0.0:
        return float("nan")
    return 10 * math.log10((signal + eps) / (float(np.sum((reference - estimate) ** 2)) + eps))


def finite_median(values):
    """The median of the finite values (BSS Eval gives NaN where a reference is silent), NaN if none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def ratio_mask(vocals, accompaniment):
    """The ideal ratio mask |V| / (|V| + |A|) from two magnitude spectrograms (freq_bins, frames)."""
    return vocals / (vocals + accompaniment).clamp(min=1e-8)


def feature_sdr(features, signal_config, mask_of):
    """The median over songs of the global SDR of the vocals of train.py's feature cache.

    The songs are rebuilt as the lab does, mono at the model's rate: the mask
    multiplies the mix's STFT (mixture phase) and the inverse STFT gives the
    vocals, scored against the inverse STFT of the true vocals' STFT.

    Args:
        features: one complex (2, freq_bins, frames) array per song, the
            vocals' and the accompaniment's scaled STFTs (data.compute_features).
        mask_of: mask_of(vocals_spec, accompaniment_spec) -> (freq_bins, frames).
    Returns:
        dB; the songs whose vocals are silent are left out, NaN if all are.
    """
    sdrs = []
    for song in features:
        vocals_spec, accompaniment_spec = torch.from_numpy(np.array(song))  # complex (F, T) each
        length = (vocals_spec.shape[-1] - 1) * signal_config.hop_length  # the samples these frames span
        mix_spec = vocals_spec + accompaniment_spec  # (F, T)
        mask = mask_of(vocals_spec, accompaniment_spec)  # (F, T)
        reference = istft(vocals_spec, signal_config, length)  # (samples,)
        sdrs.append(global_sdr(reference, istft(mask * mix_spec, signal_config, length)))
    return finite_median(sdrs)


def model_sdr(model, features, signal_config):
    """feature_sdr of the network's mask, the network reading each whole song as inference.py does."""
    def mask_of(vocals_spec, accompaniment_spec):
        return compute_mask(model, (vocals_spec + accompaniment_spec).abs(), signal_config.patch_frames)

    model.eval()
    return feature_sdr(features, signal_config, mask_of)


def reference_sdr(features, signal_config):
    """{"mixture": feature_sdr of the mix as the estimate (the floor), "oracle": of the ideal ratio
    mask at the model's STFT (the ceiling of any mask the model could predict)}."""
    return {"mixture": feature_sdr(features, signal_config, lambda v, a: torch.ones(v.shape)),
            "oracle": feature_sdr(features, signal_config, lambda v, a: ratio_mask(v.abs(), a.abs()))}
