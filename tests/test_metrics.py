"""The scores (metrics.py): BSS Eval through museval, kept to museval's own figures, and what it costs."""

import importlib.metadata

import numpy as np

import metrics


def test_museval_is_the_version_whose_private_function_metrics_patches():
    metrics.find_ffmpeg()  # museval imports stempeg, which looks for ffmpeg
    import museval.metrics

    version = importlib.metadata.version("museval")
    assert version == metrics.MUSEVAL_VERSION, (
        f"museval {version} is installed, requirements.txt pins {metrics.MUSEVAL_VERSION}: "
        "metrics.references_correlated_once replaces its private _compute_reference_correlations; check that "
        "the function still exists with the same arguments and result, then update the pin and MUSEVAL_VERSION")
    assert callable(getattr(museval.metrics, "_compute_reference_correlations", None)), (
        f"museval {version} has no metrics._compute_reference_correlations: metrics.references_correlated_once "
        "patches it; rewrite it for this version or pin the old one")


def test_scores_with_the_references_correlated_once_are_museval_s_own_to_the_last_bit():
    metrics.find_ffmpeg()  # museval imports stempeg, which looks for ffmpeg
    import museval

    rng = np.random.default_rng(0)
    rate = 8000
    songs = [rng.standard_normal((2, 2 * rate, 2)) for _ in range(2)]  # (vocals, accompaniment) x 2 s stereo
    estimates = [s + 0.3 * rng.standard_normal(s.shape) for s in songs for _ in range(2)]  # two per song
    plain = [museval.evaluate(songs[k // 2], est, win=rate, hop=rate) for k, est in enumerate(estimates)]
    calls, original = [], museval.metrics._compute_reference_correlations

    def counted(*args):
        calls.append(1)
        return original(*args)

    museval.metrics._compute_reference_correlations = counted
    try:
        with metrics.references_correlated_once():
            once = [museval.evaluate(songs[k // 2], est, win=rate, hop=rate) for k, est in enumerate(estimates)]
    finally:
        museval.metrics._compute_reference_correlations = original
    assert len(calls) == 2  # once per song, not once per estimate
    for a, b in zip(plain, once):
        for metric_a, metric_b in zip(a, b):
            np.testing.assert_array_equal(metric_a, metric_b)
    assert museval.metrics._compute_reference_correlations is original


def test_the_memory_bss_eval_needs_doubles_with_each_power_of_two_of_a_songs_length():
    need = metrics.scoring_bytes(5 * 60.0, 44100)  # padded to 2**24 points: about 5.4 GB
    assert need == 320 * 2 ** 24
    assert metrics.scoring_bytes(7 * 60.0, 44100) == 2 * need  # past 6.3 min the FFTs double
