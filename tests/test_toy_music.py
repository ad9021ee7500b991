"""toy_music.py: the toy set's variety (voices, drum styles, layers) and its struck instruments."""

import numpy as np
import pytest

import toy_music
from toy_music import VOICES, _struck, draw_voice, synth_song

RATE = 8000


def test_voices_are_drawn_from_bass_to_soprano():
    rng = np.random.default_rng(0)
    drawn = [draw_voice(rng) for _ in range(300)]
    centres = [centre for _, centre in drawn]
    formants = [voice["formants"] for voice, _ in drawn]
    lowest, highest = min(low for (low, _), _ in VOICES.values()), max(high for (_, high), _ in VOICES.values())
    assert lowest <= min(centres) < lowest + 1 and highest - 1 < max(centres) <= highest
    assert min(formants) < 0.93 and max(formants) > 1.2  # a bass's vocal tract is longer than a soprano's
    tilts = [voice["tilt"] for voice, _ in drawn]
    assert min(tilts) < 1.2 and max(tilts) > 2.1


def test_a_struck_note_sounds_at_its_pitch_and_dies_away():
    out = _struck(RATE, RATE, [(0.0, 1.0, 69, 1.0)], np.array([[1.0]]), np.array([[1.0]]), np.array([[0.15]]))
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) * RATE / len(out) == pytest.approx(440.0, abs=1.5)
    quarters = (out ** 2).reshape(4, -1).sum(1)
    assert quarters[0] > 100 * quarters[3]


def test_a_struck_instrument_renders_each_pitch_once(monkeypatch):
    calls = []
    monkeypatch.setattr(toy_music, "_hz", lambda midi: calls.append(midi) or 440.0 * 2 ** ((midi - 69) / 12))
    notes = [(0.1 * i, 0.3, 60 + i % 2, 1.0) for i in range(10)]
    _struck(RATE, RATE, notes, np.array([[1.0], [2.0]]), np.array([[1.0], [0.5]]), np.array([[0.2], [0.1]]))
    assert sorted(set(calls)) == [60, 61] and len(calls) == 4  # twice per pitch (the cut-off and the sine)


@pytest.mark.slow
def test_some_songs_have_no_drums_and_others_do():
    drums = [np.abs(synth_song(seed, 6.0, RATE)["drums"]).max() for seed in range(20)]
    assert 0 < sum(d == 0 for d in drums) < 10  # the "none" style: about one song in eight
