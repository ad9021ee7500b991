"""How well the vocals are separated: the SDR train.py logs every epoch, and BSS Eval's scores of a song.

    model_sdr         the median over train.py's validation songs of the global SDR of the
                      network's vocals (the Music Demixing Challenge's SDR of a whole song,
                      _global_sdr), from the feature cache: cheap enough for every epoch
    reference_sdr     the same for the mixture (the floor) and the ideal ratio mask
                      |V| / (|V| + |A|) (the ceiling, _ratio_mask)
    finite_median     the median that skips undefined (NaN) scores
    evaluate_track    BSS Eval v4 (museval, the MUSDB18 benchmark's scorer) of a song's
                      separation by the U-Net, the mixture and the two oracle masks:
                      the rows of evaluate.py's table

evaluate.py adds the command around evaluate_track: songs, workers, the cache, the table.
"""

import contextlib
import hashlib
import math

import numpy as np
import torch

from audio import NO_FFMPEG, AudioError, find_ffmpeg
from cli import UserError
from separation import SeparationOptions, compute_mask, mix_magnitude, reconstruct, separate, synthesis_config
from spectral import istft

_SDR_EPS = 1e-7  # _global_sdr's floor on both energies (the Music Demixing Challenge's)


def _global_sdr(reference, estimate, eps=_SDR_EPS):
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


def _ratio_mask(vocals, accompaniment):
    """The ideal ratio mask |V| / (|V| + |A|) from two magnitude spectrograms (freq_bins, frames)."""
    return vocals / (vocals + accompaniment).clamp(min=1e-8)


def _feature_sdr(features, signal_config, mask_of):
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
        sdrs.append(_global_sdr(reference, istft(mask * mix_spec, signal_config, length)))
    return finite_median(sdrs)


def model_sdr(model, features, signal_config):
    """_feature_sdr of the network's mask, the network reading each whole song as inference.py does."""
    def mask_of(vocals_spec, accompaniment_spec):
        return compute_mask(model, (vocals_spec + accompaniment_spec).abs(), signal_config.patch_frames)

    model.eval()
    return _feature_sdr(features, signal_config, mask_of)


def reference_sdr(features, signal_config):
    """{"mixture": _feature_sdr of the mix as the estimate (the floor), "oracle": of the ideal ratio
    mask at the model's STFT (the ceiling of any mask the model could predict)}."""
    return {"mixture": _feature_sdr(features, signal_config, lambda v, a: torch.ones(v.shape)),
            "oracle": _feature_sdr(features, signal_config, lambda v, a: _ratio_mask(v.abs(), a.abs()))}


# --------------------------------------------------------------------------
# BSS Eval of a song: the rows of evaluate.py's table
# --------------------------------------------------------------------------

METRICS = ("SDR", "SIR", "ISR", "SAR")
TARGETS = ("vocals", "accompaniment")
METHODS = ("U-Net", "mixture", "oracle 8 kHz", "oracle full")
REFERENCE_METHODS = METHODS[1:]  # the rows that do not depend on the model
SILENT = "its vocals or accompaniment is silent, where BSS Eval is undefined"  # evaluate_track's (None, None)
# The museval that requirements.txt pins: references_correlated_once patches a private function of it, which
# a test checks for (tests/test_evaluate.py); a new version must be checked before the pin moves.
MUSEVAL_VERSION = "0.4.1"


class EvaluationError(UserError):
    """Nothing that can be scored."""


def oracle_model_band(mix, vocals, accompaniment, rate, signal_config, reconstruction="full"):
    """(vocals, accompaniment) from the ideal mask at the model's STFT, rebuilt as the model's mask is."""
    mask = _ratio_mask(*(mix_magnitude(source, rate, signal_config) for source in (vocals, accompaniment)))  # (F, T)
    return reconstruct(mix, rate, mask, signal_config, SeparationOptions(reconstruction))


def oracle_full_band(mix, vocals, accompaniment, rate):
    """(vocals, accompaniment) from the ideal mask of the mono mix over the full-band STFT at the input's rate."""
    synthesis = synthesis_config(rate)
    mask = _ratio_mask(*(mix_magnitude(source, rate, synthesis) for source in (vocals, accompaniment)))  # (F', T')
    return reconstruct(mix, rate, mask, synthesis)


def _import_museval():
    """museval, imported once ffmpeg is on PATH: it imports musdb and stempeg, which refuse to load without
    ffmpeg, even to score WAV files (find_ffmpeg finds the system's or requirements.txt's)."""
    if not find_ffmpeg():
        raise EvaluationError(f"museval needs ffmpeg to load, but {NO_FFMPEG}")
    import museval

    return museval


def bss_eval(references, estimates, rate):
    """{target: {metric: median over 1 s windows}} with museval's BSS Eval v4."""
    museval = _import_museval()

    n = min(references[0].shape[0], estimates[0].shape[0])
    refs = np.stack([r[:n] for r in references])  # (2, n, channels)
    ests = np.stack([e[:n] for e in estimates])  # (2, n, channels)
    # BSS Eval is undefined for an all-zero estimate (a model that predicts an
    # empty mask); a -200 dB dither makes it computable, and it scores as badly as it should.
    for i in range(len(ests)):
        if not ests[i].any():
            ests[i] = 1e-10 * np.random.default_rng(i).standard_normal(ests[i].shape)
    sdr, isr, sir, sar = museval.evaluate(refs, ests, win=rate, hop=rate)
    scores = {}
    for i, target in enumerate(TARGETS):
        values = {"SDR": sdr[i], "SIR": sir[i], "ISR": isr[i], "SAR": sar[i]}
        scores[target] = {m: finite_median(v) for m, v in values.items()}
    return scores


def evaluate_track(song, model, signal_config, options=SeparationOptions(), methods=METHODS):
    """{method: {target: {metric: dB}}} for one song (songs.Song) and the `methods` asked, and the model's
    estimates (None unless "U-Net" is asked); (None, None) when a reference is SILENT. An AudioError if
    its audio cannot be read or is not finite."""
    mix, vocals, accompaniment = (song.read(stem) for stem in ("mixture", "vocals", "accompaniment"))  # (n, C)
    for name, audio in (("mixture", mix), ("vocals", vocals), ("accompaniment", accompaniment)):
        if not np.isfinite(audio).all():
            raise AudioError(f"its {name} holds NaN or infinite samples")
    references = (vocals, accompaniment)
    if not vocals.any() or not accompaniment.any():
        return None, None
    estimators = {
        "U-Net": lambda: separate(model, signal_config, mix, song.rate, options),
        "mixture": lambda: (mix, mix),
        "oracle 8 kHz": lambda: oracle_model_band(mix, vocals, accompaniment, song.rate, signal_config,
                                                  options.reconstruction),
        "oracle full": lambda: oracle_full_band(mix, vocals, accompaniment, song.rate),
    }
    estimates = {method: estimators[method]() for method in methods}
    with references_correlated_once():
        scores = {method: bss_eval(references, est, song.rate) for method, est in estimates.items()}
    return scores, estimates.get("U-Net")


@contextlib.contextmanager
def references_correlated_once():
    """Inside it, museval correlates a set of references with itself once, not once per estimate.

    BSS Eval v4 starts by correlating the references with delayed copies of
    themselves, FFTs of the whole song padded to a power of two: a large part
    of scoring one estimate (benchmarks/README.md, "Fast paths"), and the same
    for each of a song's four. Inside this
    block the last result is kept, keyed by the references' contents, and
    given back unchanged: the scores are those of museval's own code, equal
    to the last bit (tests/test_evaluate.py compares them). The 1 GB or so
    it keeps for a 4-minute song is what museval holds while scoring anyway.
    """
    _import_museval()
    import museval.metrics

    original, kept = museval.metrics._compute_reference_correlations, {}

    def correlate(reference_sources, filters_len):
        key = (reference_sources.shape, filters_len, hashlib.sha1(np.ascontiguousarray(reference_sources)).digest())
        if key not in kept:
            kept.clear()
            kept[key] = original(reference_sources, filters_len)
        return kept[key]

    museval.metrics._compute_reference_correlations = correlate
    try:
        yield
    finally:
        museval.metrics._compute_reference_correlations = original


def scoring_bytes(seconds, rate):
    """About how much memory one process needs to score a song `seconds` long.

    BSS Eval's FFTs span the whole song padded to the next power of two, so
    the need doubles at 3.2, 6.3 and 12.7 minutes (44.1 kHz). Measured peak:
    5.1 GB for songs padded to 2**24 points (3.2-6.3 min); 320 bytes a point
    is a little above it (benchmarks/README.md, MUSDB18 at full size).
    """
    return 320 * 2 ** math.ceil(math.log2(seconds * rate + 511))
