"""A second, independently made song synthesiser: a held-out test set.

toy_music.py makes the songs the U-Net trains on. A network can score well on
songs from its own synthesiser by learning that synthesiser's quirks instead of
what a voice is, so this module makes four-stem songs in a deliberately
different way, to measure how far the model generalises. Use it ONLY as a test
set: never for training, never for choosing defaults or hyper-parameters (a set
that has steered a choice is no longer held out).

Every part is made differently from toy_music.py:
  vocals  time-domain source-filter singer: Rosenberg glottal pulses with jitter,
          shimmer, a varying open quotient and breath noise drive a cascade of
          time-varying formant filters (plus a nasal antiresonance); lyrics are
          phonemes (schwa and other vowels, diphthongs, nasals, glides, s/sh/f,
          p/t/k); portamento, per-note vibrato, harmonies and octave doubles,
          three kinds of singer
  drums   resonant kick body + click, band-passed snare, claps, cymbals from
          inharmonic square waves, toms; four-on-the-floor, backbeat, half-time
          or shuffle grooves
  bass    subtractive saw/square synth with a resonant filter envelope and slides
  other   Karplus-Strong strummed guitar, FM electric piano and bells, a detuned
          string ensemble, sometimes a brass line in the singer's register
  mixing  Freeverb-style reverb, ping-pong delay, shelving EQ, saturation and a
          shared bus compressor, pads ducked by the kick; effects work per stem,
          so the four stems still add up to the mixture

    python benchmarks/other_music.py /tmp/other_songs                    # 6 songs x 30 s
    python benchmarks/other_music.py /tmp/other_songs --n-songs 3 --seconds 20

The set is written in the MUSDB18-HQ layout: OUT_DIR/test/Other Song NN/*.wav.
"""

import argparse
import json
import os
import shutil
import time
from collections import namedtuple
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from scipy.ndimage import maximum_filter1d
from scipy.signal import butter, fftconvolve, iirpeak, lfilter, sosfilt

STEMS = ('vocals', 'drums', 'bass', 'other')
BLOCK_SECONDS = 0.005  # time-varying filters get new coefficients every 5 ms

MODES = {'major': (0, 2, 4, 5, 7, 9, 11), 'minor': (0, 2, 3, 5, 7, 8, 10),
         'dorian': (0, 2, 3, 5, 7, 9, 10), 'mixolydian': (0, 2, 4, 5, 7, 9, 10)}
# Chord roots as scale degrees (0 = tonic), one chord per bar: common pop loops.
PROGRESSIONS = [(0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 5, 4), (3, 4, 0, 0), (0, 0, 3, 4), (5, 4, 3, 4)]
# Groove: (tempo range in BPM, one-bar patterns, 'x' = hit, 'o' = soft hit).
# The shuffle's 12 steps are triplet eighths, which is what makes it swing.
GROOVES = {
    'four_on_floor': ((112, 132), {'kick': 'x...x...x...x...', 'clap': '....x.......x...',
                                   'hat': 'o.x.o.x.o.x.o.x.', 'open_hat': '..........x.....'}),
    'backbeat': ((84, 160), {'kick': 'x.....x.x.......', 'snare': '....x.......x..o', 'hat': 'x.o.x.o.x.o.x.o.'}),
    'half_time': ((120, 160), {'kick': 'x......x..x.....', 'snare': '........x.......', 'ride': 'x.o.x.o.x.o.x.o.'}),
    'shuffle': ((70, 118), {'kick': 'x.....x....o', 'snare': '...x.....x..', 'hat': 'x.ox.ox.ox.o'}),
}
RHYTHMS = {  # per instrument, for 16-step (straight) and 12-step (shuffle) bars
    'bass': {16: ('x.x.x.x.x.x.x.x.', 'x..x..x.x..x..x.', 'x...x...x...x.x.', 'x.......x..x....'),
             12: ('x..x..x..x..', 'x....xx..x..')},
    'guitar': {16: ('x...x...x...x...', 'x..x..x...x.x...', 'x.....x...x.....'), 12: ('x..x..x..x..', 'x.....x..x.x')},
    'keys': {16: ('x.......x.......', 'x.....x.....x...'), 12: ('x.....x.....', 'x..x.....x..')},
}

# Formants F1-F5 (Hz) of an adult male; the other singers scale them up.
VOWELS = {'schwa': (500, 1500, 2500, 3400, 4200), 'ae': (660, 1720, 2410, 3400, 4200),
          'aw': (570, 840, 2410, 3300, 4100), 'ih': (390, 1990, 2550, 3500, 4300),
          'uh': (440, 1020, 2240, 3300, 4100), 'ah': (640, 1190, 2390, 3400, 4200),
          'eh': (530, 1840, 2480, 3450, 4250), 'ee': (280, 2250, 2900, 3600, 4400),
          'oo': (310, 870, 2250, 3300, 4100), 'aa': (730, 1090, 2440, 3400, 4200)}
DIPHTHONGS = {'ai': ('aa', 'ih'), 'ei': ('eh', 'ih'), 'ou': ('aw', 'uh'), 'au': ('aa', 'uh'), 'oi': ('aw', 'ih')}
VOICED_CONSONANTS = {'m': (260, 1000, 2200, 3300, 4100), 'n': (260, 1400, 2500, 3300, 4100),
                     'l': (360, 1300, 2700, 3400, 4200), 'w': (300, 700, 2200, 3300, 4100),
                     'r': (420, 1300, 1600, 3300, 4100)}
FORMANT_BANDWIDTHS_HZ = np.array([80, 100, 130, 180, 250])
FORMANT_PEAKS = np.array([6, 5, 4, 3, 2.5])  # how far each formant stands above the floor (about x times)
ANTIRESONANCE_HZ = {'m': 1000.0, 'n': 1700.0}  # the notch of the closed mouth in a nasal
# Unvoiced consonants: noise band (Hz) and level against the vowels.
NOISE_BANDS = {'s': (4500, 11000, 0.6), 'sh': (2200, 7000, 0.45), 'f': (1200, 9000, 0.15),
               'p': (400, 2000, 0.4), 't': (3000, 8000, 0.4), 'k': (1500, 4000, 0.4)}
PLOSIVES = ('p', 't', 'k')
CONSONANT_SECONDS = {'m': .07, 'n': .07, 'l': .06, 'w': .06, 'r': .06, 's': .1, 'sh': .1, 'f': .08,
                     't': .05, 'k': .05, 'p': .05}
ONSETS = ('', '', '', 'm', 'n', 'l', 'w', 'r', 's', 'sh', 'f', 't', 'k', 'p')
CODAS = ('', '', '', '', 'n', 'm', 's', 't')
SINGERS = {  # MIDI range, formant scale, open quotient, breath noise, pitch glide (s), jitter
    'low_male': dict(range=(43, 64), formants=1.0, open_quotient=0.55, breath=0.05, glide=0.05, jitter=0.006),
    'high_female': dict(range=(56, 79), formants=1.17, open_quotient=0.65, breath=0.1, glide=0.04, jitter=0.005),
    'breathy_falsetto': dict(range=(60, 75), formants=1.06, open_quotient=0.8, breath=0.4, glide=0.06, jitter=0.008),
}
Syllable = namedtuple('Syllable', 'start duration pitch onset vowel coda level')


@dataclass
class Plan:
    """The musical skeleton that every part of one song follows."""
    sample_rate: int
    n_samples: int
    groove: str
    tempo: float
    tonic: int  # pitch class of the key, 0 = C
    mode: str
    progression: tuple

    def __post_init__(self):
        self.beat_seconds = 60.0 / self.tempo
        self.bar_seconds = 4 * self.beat_seconds
        self.n_bars = int(np.ceil(self.n_samples / self.sample_rate / self.bar_seconds))
        self.steps = len(GROOVES[self.groove][1]['kick'])

    def chord_classes(self, bar):
        """Pitch classes of this bar's triad: root, third, fifth."""
        root = self.progression[bar % len(self.progression)]
        return [(self.tonic + MODES[self.mode][(root + step) % 7]) % 12 for step in (0, 2, 4)]

    def chord_voicing(self, bar, low, count):
        """count chord tones stacked upwards from the first one at or above MIDI pitch low."""
        classes = self.chord_classes(bar)
        return [pitch for pitch in range(low, low + 36) if pitch % 12 in classes][:count]

    def hits(self, pattern, bar):
        """(time, velocity, seconds to the next hit) for each hit of a one-bar pattern in this bar."""
        step = self.bar_seconds / len(pattern)
        onsets = [i for i, char in enumerate(pattern) if char != '.'] + [len(pattern)]
        return [((bar * len(pattern) + i) * step, 1.0 if pattern[i] == 'x' else 0.45, (j - i) * step)
                for i, j in zip(onsets, onsets[1:])]


class ControlRate:
    """Slowly changing parameters live on 5 ms blocks; this maps times and blocks to samples."""

    def __init__(self, n_samples, sample_rate):
        self.n_samples, self.sample_rate = n_samples, sample_rate
        self.block = max(1, round(BLOCK_SECONDS * sample_rate))
        self.n_blocks = -(-n_samples // self.block)
        self.times = (np.arange(self.n_blocks) + 0.5) * self.block / sample_rate

    def span(self, start, end):
        """The blocks from time start to time end."""
        return slice(int(start * self.sample_rate) // self.block, int(end * self.sample_rate) // self.block)

    def to_samples(self, values):
        """Per-block values interpolated to every sample."""
        return np.interp(np.arange(self.n_samples), self.times * self.sample_rate, values)


def hold_gaps(values):
    """Fill the NaN gaps with the value before them (or, at the start, after them)."""
    first = np.argmax(~np.isnan(values))
    values[:first] = values[first]
    return values[np.maximum.accumulate(np.where(np.isnan(values), 0, np.arange(len(values))))]


def midi_to_hz(midi):
    """Frequency in Hz of a (fractional) MIDI pitch."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def pan_stereo(mono, position):
    """Constant-power pan of a mono signal: position -1 (left) .. +1 (right)."""
    angle = (position + 1.0) * np.pi / 4
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=1)


def add_at(track, sound, start_seconds, sample_rate):
    """Mix a one-shot sound into track from the given time (cut off at the track's end)."""
    start = int(round(start_seconds * sample_rate))
    if 0 <= start < len(track):
        end = min(len(track), start + len(sound))
        track[start:end] += sound[:end - start]


def blep_saw(phase, step):
    """Sawtooth from a phase in [0, 1); polyBLEP rounds off each wrap so it hardly aliases."""
    step = np.broadcast_to(step, phase.shape)
    saw = 2.0 * phase - 1.0
    after, before = phase < step, phase > 1.0 - step
    t = phase[after] / step[after]
    saw[after] -= 2 * t - t * t - 1
    t = (phase[before] - 1.0) / step[before]
    saw[before] -= t * t + 2 * t + 1
    return saw


def bandpass(low_hz, high_hz, sample_rate):
    """A 2nd-order Butterworth band-pass as sos, its top edge kept below Nyquist."""
    return butter(2, [low_hz, min(high_hz, 0.45 * sample_rate)], 'bandpass', fs=sample_rate, output='sos')


def time_varying_filter(signal, sections, block):
    """Filter block by block with sections[b] (n_sections x 6 sos) for block b, carrying the state over."""
    out = np.zeros_like(signal)
    state = np.zeros((sections.shape[1], 2))
    for b in range(sections.shape[0]):
        segment = signal[b * block:(b + 1) * block]
        if np.abs(state).max() < 1e-9 and not segment.any():  # silence in, silence out: skip it
            state[:] = 0.0
            continue
        out[b * block:(b + 1) * block], state = sosfilt(sections[b], segment, zi=state)
    return out


def pole_zero_sections(freqs, pole_bandwidths, zero_bandwidths, sample_rate):
    """Biquads with a pole pair and a zero pair at each frequency, one sos row per frequency.

    Zeros wider than the poles make a formant, a resonant peak over a flat floor (an all-pole
    cascade at 44.1 kHz falls 12 dB/octave per formant above F5 and leaves no voice above 5 kHz);
    zeros narrower than the poles make an antiresonance, and equal widths do nothing."""
    angle = 2 * np.pi * freqs / sample_rate
    pole_radius = np.exp(-np.pi * np.broadcast_to(pole_bandwidths, freqs.shape) / sample_rate)
    zero_radius = np.exp(-np.pi * np.broadcast_to(zero_bandwidths, freqs.shape) / sample_rate)
    ones = np.ones_like(freqs)
    return np.stack([ones, -2 * zero_radius * np.cos(angle), zero_radius ** 2,
                     ones, -2 * pole_radius * np.cos(angle), pole_radius ** 2], axis=-1)


def lowpass_sections(cutoffs, q, sample_rate):
    """Resonant low-pass biquads (audio-EQ cookbook), one 1 x 6 sos per cutoff."""
    w = 2 * np.pi * cutoffs / sample_rate
    alpha, cos_w = np.sin(w) / (2 * q), np.cos(w)
    coefs = np.stack([(1 - cos_w) / 2, 1 - cos_w, (1 - cos_w) / 2, 1 + alpha, -2 * cos_w, 1 - alpha], axis=-1)
    return (coefs / coefs[:, 3:4])[:, None, :]


def shelf(signal, kind, freq, gain_db, sample_rate):
    """Low or high shelving EQ (audio-EQ cookbook, slope 1) along the time axis."""
    sign, amp = (1 if kind == 'low' else -1), 10 ** (gain_db / 40)
    cos_w, sin_w = np.cos(2 * np.pi * freq / sample_rate), np.sin(2 * np.pi * freq / sample_rate)
    plus, minus, root = amp + 1, amp - 1, np.sqrt(2 * amp) * sin_w
    b = [amp * (plus - sign * minus * cos_w + root), 2 * sign * amp * (minus - sign * plus * cos_w),
         amp * (plus - sign * minus * cos_w - root)]
    a = [plus + sign * minus * cos_w + root, -2 * sign * (minus + sign * plus * cos_w),
         plus + sign * minus * cos_w - root]
    return lfilter(b, a, signal, axis=0)


# ---------------------------------------------------------------- vocals
def write_melody(rng, plan, singer):
    """Lead syllables in phrases with rests after an instrumental intro; harmony syllables for some phrases."""
    low, high = singer['range']
    scale = [m for m in range(low - 12, high + 13) if (m - plan.tonic) % 12 in MODES[plan.mode]]
    in_range = [i for i, m in enumerate(scale) if low <= m <= high]
    index = int(rng.choice(in_range[len(in_range) // 3: 2 * len(in_range) // 3]))
    phrase_bars = 1 if plan.bar_seconds > 3.0 else 2
    bar, lead, harmony = (1 if plan.bar_seconds > 2.5 else 2), [], []
    while (bar + 0.5 * phrase_bars) * plan.bar_seconds < plan.n_samples / plan.sample_rate:
        beat, end_beat, phrase = rng.choice([0.0, 0.5, 1.0]), 4 * phrase_bars - rng.choice([1.0, 1.5, 2.0]), []
        while beat < end_beat - 0.25:
            length = min(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]), end_beat - beat)
            index = int(np.clip(index + rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3]), in_range[0], in_range[-1]))
            if beat % 1 == 0:  # strong beats land on a chord tone
                chord = plan.chord_classes(bar + int(beat // 4))
                index = min(in_range, key=lambda i: abs(i - index) + 10 * (scale[i] % 12 not in chord))
            phrase.append(Syllable((bar * 4 + beat) * plan.beat_seconds, length * plan.beat_seconds, scale[index],
                                   rng.choice(ONSETS), rng.choice(list(VOWELS) + list(DIPHTHONGS)),
                                   rng.choice(CODAS), rng.uniform(0.7, 1.0)))
            beat += length
        lead += phrase
        if rng.random() < 0.3:  # a second voice a third or a sixth above, or an octave away
            kind, octave = rng.choice(['third', 'sixth', 'octave']), (12 if low < 50 else -12)
            for s in phrase:
                steps_up = 2 if kind == 'third' else 5
                pitch = s.pitch + octave if kind == 'octave' else scale[scale.index(s.pitch) + steps_up]
                harmony.append(s._replace(start=s.start + 0.015, pitch=pitch, level=0.9 * s.level))
        bar += phrase_bars + int(rng.random() < 0.25)
    return lead, harmony


def phonemes(syllable):
    """(start, end, phoneme) of the syllable's onset consonant, vowel and coda consonant."""
    start, end = syllable.start, syllable.start + syllable.duration
    onset = min(CONSONANT_SECONDS.get(syllable.onset, 0.0), 0.3 * syllable.duration)
    coda = min(CONSONANT_SECONDS.get(syllable.coda, 0.0), 0.2 * syllable.duration)
    pieces = [(start, start + onset, syllable.onset), (start + onset, end - coda, syllable.vowel),
              (end - coda, end, syllable.coda)]
    return [piece for piece in pieces if piece[2]]


def glottal_source(rng, f0, open_quotient, singer, sample_rate):
    """Rosenberg glottal flow derivative with per-cycle jitter and shimmer, plus breath noise."""
    cycle = np.cumsum(f0 / sample_rate).astype(int)
    jitter = 1 + singer['jitter'] * rng.standard_normal(cycle[-1] + 2)
    phase = np.cumsum(f0 * jitter[cycle] / sample_rate)
    cycle = phase.astype(int)
    in_cycle, opening, closing = phase - cycle, 0.7 * open_quotient, 0.3 * open_quotient
    flow = np.where(in_cycle < opening, 0.5 * (1 - np.cos(np.pi * in_cycle / opening)),
                    np.where(in_cycle < open_quotient, np.cos(0.5 * np.pi * (in_cycle - opening) / closing), 0.0))
    shimmer = 1 + 0.05 * rng.standard_normal(cycle[-1] + 2)
    pulses = np.diff(flow, prepend=0.0) * sample_rate / f0 * shimmer[cycle]  # the lips radiate the derivative
    # The glottis closes over a short return phase, not at once: a first-order low-pass near 3 kHz.
    smoothing = np.exp(-2 * np.pi * 3000 / sample_rate)
    pulses = lfilter([1 - smoothing], [1, -smoothing], pulses)
    pulses /= pulses.std() + 1e-12
    # Breath is turbulence at the glottis: loudest while it is open, and dull (-6 dB/octave).
    breath = lfilter([0.5], [1, -0.75], rng.standard_normal(len(f0)))
    return pulses + singer['breath'] * breath * (0.25 + flow)


def consonant_noise(rng, phoneme, seconds, sample_rate):
    """Band-passed noise for a fricative (held) or a plosive (a burst and its aspiration)."""
    low, high, level = NOISE_BANDS[phoneme]
    seconds = 0.04 if phoneme in PLOSIVES else seconds
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    noise = sosfilt(bandpass(low, high, sample_rate), rng.standard_normal(len(t)))
    envelope = np.exp(-t / 0.008) if phoneme in PLOSIVES else np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)
    return level * envelope * noise / (noise.std() + 1e-12)


def render_singer(rng, syllables, singer, n_samples, sample_rate):
    """One sung line: glottal pulses through time-varying formant filters, plus consonant noise."""
    if not syllables:
        return np.zeros(n_samples)
    control = ControlRate(n_samples, sample_rate)
    pitch, vibrato = np.full(control.n_blocks, np.nan), np.zeros(control.n_blocks)
    voicing, nasal, notch_hz = np.zeros(control.n_blocks), np.zeros(control.n_blocks), np.full(control.n_blocks, 1e3)
    open_quotient = np.full(control.n_blocks, singer['open_quotient'])
    key_times, key_formants, noises = [], [], []
    for syl in syllables:
        note = control.span(syl.start, syl.start + syl.duration)
        pitch[note] = syl.pitch
        open_quotient[note] += rng.uniform(-0.08, 0.08)
        # Vibrato rate and depth vary per note, some notes are straight, and it sets in after the attack.
        rate, depth = rng.uniform(4, 7), (0.0 if rng.random() < 0.3 else rng.uniform(0.15, 0.6))
        since = control.times[note] - syl.start
        vibrato[note] = depth * np.clip((since - 0.12) / 0.25, 0, 1) * np.sin(2 * np.pi * rate * since)
        for start, end, phoneme in phonemes(syl):
            part = control.span(start, end)
            if phoneme in VOWELS or phoneme in DIPHTHONGS:
                first, last = DIPHTHONGS.get(phoneme, (phoneme, phoneme))
                key_times += [start + 0.2 * (end - start), end - 0.2 * (end - start)]
                key_formants += [VOWELS[first], VOWELS[last]]
                voicing[part] = syl.level
            elif phoneme in VOICED_CONSONANTS:
                key_times.append((start + end) / 2)
                key_formants.append(VOICED_CONSONANTS[phoneme])
                voicing[part] = 0.45 * syl.level
                if phoneme in ANTIRESONANCE_HZ:
                    nasal[part], notch_hz[part] = 1.0, ANTIRESONANCE_HZ[phoneme]
            else:
                noises.append((start, end, phoneme, syl.level))
    # Hold the pitch through rests, glide between notes (portamento), add vibrato and a slow drift.
    pitch = hold_gaps(pitch)
    keep = np.exp(-BLOCK_SECONDS / singer['glide'])
    pitch = lfilter([1 - keep], [1, -keep], pitch - pitch[0]) + pitch[0]
    pitch += vibrato + 0.4 * lfilter([0.03], [1, -0.97], rng.standard_normal(control.n_blocks))

    def smooth(values, width):
        return np.convolve(values, np.ones(width) / width, mode='same')

    voicing, nasal = smooth(voicing, 4), smooth(nasal, 3)

    # Formants move linearly from one phoneme's target to the next (coarticulation).
    formants = np.stack([np.interp(control.times, key_times, f) for f in np.array(key_formants).T], axis=1)
    formants *= singer['formants']
    # Singers raise F1 to follow a high fundamental rather than lose the note's strength.
    formants[:, 0] = np.maximum(formants[:, 0], np.minimum(1.1 * midi_to_hz(pitch), 1000.0))
    sections = pole_zero_sections(formants, FORMANT_BANDWIDTHS_HZ, FORMANT_PEAKS * FORMANT_BANDWIDTHS_HZ, sample_rate)
    # A nasal's closed mouth adds an antiresonance: zeros that narrow from 1500 Hz wide to 200 Hz.
    notch = pole_zero_sections(notch_hz, 1500.0, 1500.0 - 1300.0 * nasal, sample_rate)
    sections = np.concatenate([sections, notch[:, None, :]], axis=1)

    voicing = control.to_samples(voicing)
    f0, open_quotient = midi_to_hz(control.to_samples(pitch)), control.to_samples(open_quotient)
    voice = time_varying_filter(glottal_source(rng, f0, open_quotient, singer, sample_rate) * voicing,
                                sections, control.block)
    voice /= np.sqrt(np.mean(voice[voicing > 0.3] ** 2)) + 1e-12
    for start, end, phoneme, level in noises:
        burst_start = end - 0.01 if phoneme in PLOSIVES else start  # a plosive bursts at the end of its closure
        add_at(voice, level * consonant_noise(rng, phoneme, end - start, sample_rate), burst_start, sample_rate)
    return voice


def render_vocals(rng, plan):
    """The vocals stem: one singer, some phrases harmonised or doubled, panned near or off centre."""
    singer = SINGERS[rng.choice(list(SINGERS), p=[0.45, 0.4, 0.15])]
    lead, harmony = write_melody(rng, plan, singer)
    pan = rng.uniform(-0.4, 0.4) if rng.random() < 0.5 else rng.uniform(-0.08, 0.08)
    vocals = pan_stereo(render_singer(rng, lead, singer, plan.n_samples, plan.sample_rate), pan)
    if harmony:
        second = rng.uniform(0.45, 0.7) * render_singer(rng, harmony, singer, plan.n_samples, plan.sample_rate)
        vocals += pan_stereo(second, float(np.clip(-pan + rng.uniform(-0.2, 0.2), -0.6, 0.6)))
    return vocals, singer


# ---------------------------------------------------------------- drums and bass
def make_drum_kit(rng, sample_rate):
    """One-shot samples (each with its level) for kick, snare, clap, hats, ride, crash and toms."""
    def times(seconds):
        return np.arange(int(seconds * sample_rate)) / sample_rate

    def noise(seconds):
        return rng.standard_normal(int(seconds * sample_rate))

    t = times(0.5)
    body = np.sin(2 * np.pi * rng.uniform(45, 62) * t) * np.exp(-t / rng.uniform(0.12, 0.25))
    click = sosfilt(bandpass(1500, 8000, sample_rate), noise(0.5)) * np.exp(-t / 0.002)
    kit = {'kick': np.tanh(2.5 * body) + 0.6 * click / np.abs(click).max()}
    t = times(0.35)
    ring = lfilter(*iirpeak(rng.uniform(1800, 3600), 4, fs=sample_rate), noise(0.35))  # the resonant band-pass
    rattle = sosfilt(bandpass(1000, 9000, sample_rate), noise(0.35)) + 2 * ring
    tone = (np.sin(2 * np.pi * 185 * t) + 0.6 * np.sin(2 * np.pi * 330 * t)) * np.exp(-t / 0.05)
    kit['snare'] = rattle / np.abs(rattle).max() * np.exp(-t / rng.uniform(0.08, 0.16)) + 0.5 * tone
    t = times(0.4)  # a clap is several hands a few milliseconds apart, then the room
    claps = sum((t >= delay) * np.exp(-np.maximum(t - delay, 0) / 0.006) for delay in (0, 0.011, 0.023, 0.034))
    claps += 0.5 * (t >= 0.034) * np.exp(-np.maximum(t - 0.034, 0) / 0.12)
    kit['clap'] = sosfilt(bandpass(900, 3500, sample_rate), noise(0.4)) * claps
    # Cymbals: six square waves at inharmonic ratios sound metallic once band-passed.
    partials = np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0]) * rng.uniform(0.9, 1.25)
    for name, seconds, decay, ratio, band in (('hat', 0.15, 0.035, 1.0, (7000, 14000)),
                                              ('open_hat', 0.6, 0.25, 1.0, (6000, 14000)),
                                              ('ride', 1.6, 0.9, 1.43, (3000, 12000)),
                                              ('crash', 2.0, 1.2, 1.17, (3000, 12000))):
        t = times(seconds)
        squares = sum(np.sign(np.sin(2 * np.pi * (f * ratio * t + rng.random()))) for f in partials)
        kit[name] = sosfilt(bandpass(*band, sample_rate), squares + (name == 'crash') * 3 * noise(seconds))
        kit[name] *= np.exp(-t / decay)
    t = times(0.45)
    for name, tom_hz in zip(('tom_low', 'tom_mid', 'tom_high'), np.array([95, 130, 175]) * rng.uniform(0.9, 1.1)):
        kit[name] = np.sin(2 * np.pi * tom_hz * (t + 0.015 * (1 - np.exp(-t / 0.05)))) * np.exp(-t / 0.18)
    levels = {'kick': 1.0, 'snare': 0.7, 'clap': 0.6, 'hat': 0.4, 'open_hat': 0.3, 'ride': 0.3, 'crash': 0.35}
    return {name: levels.get(name, 0.55) * sound / np.abs(sound).max() for name, sound in kit.items()}


def render_drums(rng, plan):
    """The drums stem playing the song's groove, with tom fills and crashes; also returns the kick times."""
    kit, patterns = make_drum_kit(rng, plan.sample_rate), GROOVES[plan.groove][1]
    tracks, kick_times = {name: np.zeros(plan.n_samples) for name in kit}, []
    for bar in range(plan.n_bars):
        start = bar * plan.bar_seconds
        fill = bar % 4 == 3 and rng.random() < 0.6
        for name, pattern in patterns.items():
            for hit_time, velocity, _ in plan.hits(pattern, bar):
                if fill and name != 'kick' and hit_time >= start + 3 * plan.beat_seconds:
                    continue
                hit_time += rng.normal(0, 0.004)  # a drummer is never exactly on the grid
                add_at(tracks[name], kit[name] * velocity * rng.uniform(0.85, 1.0), hit_time, plan.sample_rate)
                kick_times += [hit_time] if name == 'kick' else []
        if fill:
            for i, name in enumerate(('tom_high', 'tom_high', 'tom_mid', 'tom_low')):
                add_at(tracks[name], kit[name], start + (3 + i / 4) * plan.beat_seconds, plan.sample_rate)
        if bar % 4 == 0 and (bar > 0 or rng.random() < 0.5):
            add_at(tracks['crash'], kit['crash'], start, plan.sample_rate)
    pans = {'hat': 0.35, 'open_hat': 0.35, 'ride': -0.35, 'crash': -0.25, 'snare': 0.05, 'clap': -0.05,
            'tom_low': -0.3, 'tom_high': 0.3}
    return sum(pan_stereo(track, pans.get(name, 0.0)) for name, track in tracks.items()), kick_times


def synth_line(rng, notes, plan, square, cutoff, sweep, resonance, attack, filter_decay, vibrato=0.0):
    """A monophonic subtractive synth: saw or square through a resonant low-pass with a filter envelope.

    notes are (start, duration, midi, slide) tuples; a sliding note glides from the previous pitch."""
    control = ControlRate(plan.n_samples, plan.sample_rate)
    pitch, filter_envelope = np.full(control.n_blocks, np.nan), np.zeros(control.n_blocks)
    amplitude, previous = np.zeros(plan.n_samples), notes[0][2]
    for start, duration, midi, slide in notes:
        first, last = int(start * plan.sample_rate), min(plan.n_samples, int((start + duration) * plan.sample_rate))
        if first >= last:
            continue
        note = control.span(start, start + duration + BLOCK_SECONDS)
        pitch[note] = midi
        if slide:
            glide = len(pitch[note][:int(0.07 / BLOCK_SECONDS)])
            pitch[note.start:note.start + glide] = np.linspace(previous, midi, glide)
        since = np.maximum(control.times[note] - start, 0.0)
        filter_envelope[note] = np.minimum(1, since / attack) * np.exp(-since / filter_decay)
        t = np.arange(last - first) / plan.sample_rate
        amplitude[first:last] = (np.minimum(1, t / attack) * (0.7 + 0.3 * np.exp(-t / 0.3))
                                 * np.minimum(1, (duration - t) / 0.015))
        previous = midi
    pitch = hold_gaps(pitch) + vibrato * np.sin(2 * np.pi * 5.2 * control.times)
    step = midi_to_hz(control.to_samples(pitch)) / plan.sample_rate
    phase = (np.cumsum(step) + rng.random()) % 1.0
    wave = blep_saw(phase, step)
    if square:  # a square wave is the difference of two saws half a cycle apart
        wave -= blep_saw((phase + 0.5) % 1.0, step)
    cutoffs = np.clip(cutoff * (1 + sweep * filter_envelope), 30, 0.45 * plan.sample_rate)
    return time_varying_filter(wave * amplitude, lowpass_sections(cutoffs, resonance, plan.sample_rate), control.block)


def render_bass(rng, plan):
    """The bass stem: roots, octaves and fifths on a rhythm chosen per song, with occasional slides."""
    rhythm, legato, notes = rng.choice(RHYTHMS['bass'][plan.steps]), rng.uniform(0.5, 0.95), []
    for bar in range(plan.n_bars):
        root = 28 + (plan.chord_classes(bar)[0] - 28) % 12
        for i, (hit_time, _, length) in enumerate(plan.hits(rhythm, bar)):
            pitch = root + rng.choice([0, 0, 0, 12, 7]) if i else root
            notes.append((hit_time, length * legato, pitch, rng.random() < 0.15))
    bass = synth_line(rng, notes, plan, square=rng.random() < 0.4, cutoff=rng.uniform(150, 350),
                      sweep=rng.uniform(2, 8), resonance=rng.uniform(1.5, 5), attack=0.004,
                      filter_decay=rng.uniform(0.06, 0.2))
    return pan_stereo(bass, 0.0)


# ---------------------------------------------------------------- other instruments
def karplus_strong(freq, seconds, sample_rate, rng):
    """A plucked string: a noise burst recirculating through a delay line with an averaging low-pass."""
    period = max(2, int(round(sample_rate / freq - 0.5)))  # the averaging adds half a sample of delay
    loss = 10 ** (-3 / (rng.uniform(1.5, 3.0) * freq))  # gain per period for a 1.5-3 s decay
    n_samples = int(seconds * sample_rate)
    line = np.zeros(1 + max(n_samples, period))  # line[0] is the silence before the pluck
    line[1:period + 1] = lfilter([0.6], [1, -0.4], rng.uniform(-1, 1, period))  # a soft pick
    for start in range(period + 1, len(line), period):  # one period at a time, vectorised within it
        end = min(start + period, len(line))
        line[start:end] = loss * 0.5 * (line[start - period:end - period] + line[start - period - 1:end - period - 1])
    out = line[1:n_samples + 1]
    return out * np.minimum(1, (seconds - np.arange(len(out)) / sample_rate) / 0.03)  # damped at the next strum


def fm_note(freq, seconds, sample_rate, ratio, index, amp_decay):
    """Two-operator FM: an electric piano with ratio 1 (plus a tine ping), bells with an inharmonic ratio."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = np.sin(2 * np.pi * freq * t + index * np.exp(-t / 0.3) * np.sin(2 * np.pi * ratio * freq * t))
    if ratio == 1 and 14 * freq < 0.45 * sample_rate:
        tone += 0.15 * np.sin(2 * np.pi * 14 * freq * t) * np.exp(-t / 0.015)
    return tone * np.exp(-t / amp_decay) * np.minimum(1, (seconds - t) / 0.05)


def render_guitar(rng, plan):
    """Karplus-Strong strummed chords, down and up strokes in turn."""
    guitar, rhythm = np.zeros(plan.n_samples), rng.choice(RHYTHMS['guitar'][plan.steps])
    for bar in range(plan.n_bars):
        for i, (hit_time, velocity, length) in enumerate(plan.hits(rhythm, bar)):
            strings = plan.chord_voicing(bar, 45, 5)[::1 if i % 2 == 0 else -1]
            for k, pitch in enumerate(strings):
                pluck = karplus_strong(midi_to_hz(pitch), length + 0.1, plan.sample_rate, rng)
                add_at(guitar, velocity * pluck, hit_time + k * rng.uniform(0.008, 0.02), plan.sample_rate)
    return pan_stereo(guitar, rng.choice([-0.5, 0.5]))


def render_keys(rng, plan, bells):
    """FM electric-piano chords, or single bell notes from the chord an octave and more higher."""
    keys, rhythm = np.zeros(plan.n_samples), rng.choice(RHYTHMS['keys'][plan.steps])
    for bar in range(plan.n_bars):
        chord = plan.chord_voicing(bar, 72 if bells else 53, 4)
        for hit_time, velocity, _ in plan.hits(rhythm, bar):
            for pitch in ([rng.choice(chord)] if bells else chord):
                note = fm_note(midi_to_hz(pitch), 1.5, plan.sample_rate, 3.5 if bells else 1,
                               2.5 if bells else 1.8, 1.5 if bells else 1.2)
                add_at(keys, velocity * note, hit_time, plan.sample_rate)
    return pan_stereo(keys, rng.uniform(-0.4, 0.4))


def render_strings(rng, plan, kick_times):
    """A string-ensemble pad: five detuned, spread saws per note with a slow attack, maybe ducked by the kick."""
    pad, attack = np.zeros((plan.n_samples, 2)), rng.uniform(0.3, 0.9)
    t = np.arange(int((plan.bar_seconds + 0.4) * plan.sample_rate)) / plan.sample_rate
    envelope = np.minimum(1, t / attack) * np.minimum(1, (t[-1] - t) / 0.4)
    for bar in range(plan.n_bars):
        for pitch in plan.chord_voicing(bar, 55, 4):
            for cents in np.linspace(-14, 14, 5) + rng.normal(0, 2, 5):  # an ensemble is never in tune
                step = midi_to_hz(pitch + cents / 100) / plan.sample_rate
                voice = blep_saw((rng.random() + step * np.arange(len(t))) % 1.0, step) * envelope
                add_at(pad, pan_stereo(voice, rng.uniform(-0.7, 0.7)), bar * plan.bar_seconds, plan.sample_rate)
    pad = sosfilt(butter(2, 3500, fs=plan.sample_rate, output='sos'), pad, axis=0)
    if rng.random() < 0.5:  # sidechain ducking: the pad dips under every kick and swells back
        gain = np.ones(plan.n_samples)
        duck = 1 - 0.6 * np.exp(-np.arange(int(0.25 * plan.sample_rate)) / (0.08 * plan.sample_rate))
        for kick in kick_times:
            window = gain[max(0, int(kick * plan.sample_rate)):][:len(duck)]
            window[:] = np.minimum(window, duck[:len(window)])
        pad *= gain[:, None]
    return pad


def render_brass(rng, plan, singer):
    """A brass-like counter-melody of chord tones in the singer's register, overlapping the voice."""
    low, high = singer['range']
    notes = []
    for bar in range(plan.n_bars):
        if rng.random() < 0.5:
            chord = [p for p in range(low, high + 1) if p % 12 in plan.chord_classes(bar)]
            start = (bar * 4 + rng.choice([0.5, 1.0, 1.5, 2.0])) * plan.beat_seconds
            notes.append((start, rng.uniform(1, 2) * plan.beat_seconds, rng.choice(chord), rng.random() < 0.3))
    if not notes:
        return np.zeros((plan.n_samples, 2))
    # Brass brightens as it gets louder: the cutoff follows the slow attack up.
    brass = synth_line(rng, notes, plan, square=False, cutoff=700, sweep=3, resonance=1.2, attack=0.06,
                       filter_decay=0.6, vibrato=0.12)
    return pan_stereo(brass, rng.uniform(-0.3, 0.3))


def render_other(rng, plan, singer, kick_times):
    """The other stem: a band drawn per song from guitar, e-piano, bells, strings and brass."""
    band = [name for name, chance in (('guitar', .7), ('epiano', .55), ('bells', .3), ('strings', .7), ('brass', .4))
            if rng.random() < chance]
    if len({'guitar', 'epiano', 'strings'} & set(band)) < 2:
        band = ['guitar', 'strings'] + [name for name in band if name not in ('guitar', 'strings')]
    makers = {'guitar': lambda: render_guitar(rng, plan),
              'epiano': lambda: render_keys(rng, plan, bells=False),
              'bells': lambda: render_keys(rng, plan, bells=True),
              'strings': lambda: render_strings(rng, plan, kick_times),
              'brass': lambda: render_brass(rng, plan, singer)}
    parts = [makers[name]() for name in band]
    return sum(rng.uniform(0.5, 1.0) * part / (np.sqrt(np.mean(part ** 2)) + 1e-12) for part in parts)


# ---------------------------------------------------------------- mixing
def freeverb_response(rng, sample_rate, seconds=2.5):
    """Stereo impulse response of a Freeverb-style network: 8 damped feedback combs, then 4 allpasses.

    The network is linear and time-invariant, so convolving with its impulse response is the same as
    running it, only faster."""
    room, damping = rng.uniform(0.7, 0.86), rng.uniform(0.2, 0.5)
    n_samples = int(seconds * sample_rate)
    impulse = np.zeros(n_samples)
    impulse[int(rng.uniform(0.01, 0.03) * sample_rate)] = 1.0  # pre-delay
    channels = []
    for spread in (0, 23):  # as in Freeverb, the right channel's delays are slightly longer
        wet = np.zeros(n_samples)
        for comb_ms in (25.3, 26.9, 28.9, 30.7, 32.2, 33.8, 35.3, 36.7):
            delay = int(comb_ms / 1000 * sample_rate) + spread
            line, state = np.concatenate([np.zeros(delay), impulse]), np.zeros(1)
            for start in range(delay, len(line), delay):  # one delay length at a time, vectorised within it
                echo = line[start - delay:min(start, len(line) - delay)]
                damped, state = lfilter([1 - damping], [1, -damping], echo, zi=state)
                line[start:start + len(damped)] += room * damped
            wet += line[delay:]
        for allpass_ms in (12.6, 10.0, 7.7, 5.1):
            delay = int(allpass_ms / 1000 * sample_rate) + spread
            x, y = np.concatenate([np.zeros(delay), wet]), np.zeros(delay + n_samples)
            for start in range(delay, len(y), delay):
                end = min(start + delay, len(y))
                y[start:end] = -0.5 * x[start:end] + x[start - delay:end - delay] + 0.5 * y[start - delay:end - delay]
            wet = y[delay:]
        channels.append(wet / np.sqrt(np.sum(wet ** 2)))
    return np.stack(channels, axis=1)


def add_reverb(stem, response, send):
    """The stem plus its reverb at the given send level (a mono send into the stereo reverb)."""
    mono = stem.mean(axis=1)
    return stem + send * np.stack([fftconvolve(mono, response[:, c])[:len(stem)] for c in (0, 1)], axis=1)


def ping_pong_delay(stem, delay_seconds, feedback, wet, sample_rate):
    """Echoes of the stem that alternate left and right, each quieter and darker than the last."""
    echo, out, shift = stem.mean(axis=1), stem.copy(), int(delay_seconds * sample_rate)
    for repeat in range(1, 8):
        if repeat * shift >= len(stem):
            break
        echo = lfilter([0.5], [1, -0.5], echo)
        out[repeat * shift:, (repeat + 1) % 2] += wet * feedback ** (repeat - 1) * echo[:len(stem) - repeat * shift]
    return out


def frame_rms(stereo, sample_rate, frame_seconds=0.05):
    """RMS of consecutive 50 ms frames over both channels."""
    frame = int(frame_seconds * sample_rate)
    n_frames = len(stereo) // frame
    return np.sqrt(np.mean(stereo[:n_frames * frame].reshape(n_frames, -1) ** 2, axis=1))


def vocal_activity(vocals, accompaniment, sample_rate):
    """Fraction of frames with vocals above -40 dB re their loudest frame, and vocals/accompaniment dB there."""
    vocal_rms, other_rms = frame_rms(vocals, sample_rate), frame_rms(accompaniment, sample_rate)
    if not vocal_rms.any():  # a song too short to reach the first phrase
        return 0.0, -np.inf
    active = vocal_rms > vocal_rms.max() * 10 ** (-40 / 20)
    ratio = np.sum(vocal_rms[active] ** 2) / (np.sum(other_rms[active] ** 2) + 1e-20)
    return active.mean(), 10 * np.log10(ratio + 1e-20)


def mix_song(rng, plan, vocals, drums, bass, other):
    """Per-stem EQ, saturation, compression, delay and reverb, levels, and a final gain that cannot clip."""
    rate = plan.sample_rate
    vocals = shelf(shelf(vocals, 'low', 150, rng.uniform(-3, 0), rate), 'high', 6000, rng.uniform(0, 3), rate)
    drums = shelf(shelf(drums, 'low', 80, rng.uniform(0, 3), rate), 'high', 8000, rng.uniform(-2, 2), rate)
    bass = shelf(bass, 'high', 1500, rng.uniform(-3, 0), rate)
    other = shelf(shelf(other, 'low', 200, rng.uniform(-4, 0), rate), 'high', 8000, rng.uniform(-2, 2), rate)
    accompaniment = []
    for stem, level_db in ((drums, rng.uniform(-2, 0)), (bass, rng.uniform(-5, -1)), (other, rng.uniform(-4, 0))):
        stem = 0.5 * stem / np.abs(stem).max() * 10 ** (level_db / 20)
        drive = rng.uniform(1.0, 2.0)  # soft-clip saturation: linear when quiet, about -2 dB on the peaks
        accompaniment.append(np.tanh(drive * stem) / drive)
    drums, bass, other = accompaniment
    response = freeverb_response(rng, rate)
    other = add_reverb(other, response, rng.uniform(0.15, 0.35))
    drums = add_reverb(drums, response, rng.uniform(0.05, 0.15))
    if rng.random() < 0.4:
        vocals = ping_pong_delay(vocals, 0.75 * plan.beat_seconds, rng.uniform(0.3, 0.5), rng.uniform(0.15, 0.3), rate)
    vocals = add_reverb(vocals, response, rng.uniform(0.15, 0.35))
    # A bus compressor: one gain curve from the accompaniment's sum, applied alike to its three stems.
    level = maximum_filter1d(np.abs(drums + bass + other).max(axis=1), int(0.01 * rate))
    level = lfilter([0.001], [1, -0.999], level) + 1e-9
    over_db = np.maximum(0.0, 20 * np.log10(level / np.percentile(level, 90)) + 4)
    gain = (10 ** (-over_db * (1 - 1 / 2.5) / 20))[:, None]  # ratio 2.5 : 1
    drums, bass, other = drums * gain, bass * gain, other * gain
    _, ratio_db = vocal_activity(vocals, drums + bass + other, rate)
    target_db = rng.uniform(-6, 3)
    vocals *= 10 ** ((target_db - ratio_db) / 20) if np.isfinite(ratio_db) else 1.0
    stems = dict(zip(STEMS, (vocals, drums, bass, other)))
    scale = rng.uniform(0.6, 0.9) / np.abs(sum(stems.values())).max()
    return {name: (stem * scale).astype(np.float32) for name, stem in stems.items()}


def synth_song(seed, seconds, sample_rate=44100):
    """One song as {'vocals', 'drums', 'bass', 'other'} -> float32 (samples, 2); deterministic in seed."""
    rng = np.random.default_rng(seed)
    groove = str(rng.choice(list(GROOVES)))
    plan = Plan(sample_rate, int(round(seconds * sample_rate)), groove, rng.uniform(*GROOVES[groove][0]),
                int(rng.integers(12)), str(rng.choice(list(MODES))), PROGRESSIONS[rng.integers(len(PROGRESSIONS))])
    vocals, singer = render_vocals(rng, plan)
    drums, kick_times = render_drums(rng, plan)
    bass = render_bass(rng, plan)
    other = render_other(rng, plan, singer, kick_times)
    return mix_song(rng, plan, vocals, drums, bass, other)


# ---------------------------------------------------------------- the test set
def song_stats(stems, sample_rate):
    """Mixture peak, vocal activity and level, and each part's share of energy above 4096 Hz."""
    accompaniment = stems['drums'] + stems['bass'] + stems['other']

    def share_above_4k(stereo):
        power = np.sum(np.abs(np.fft.rfft(stereo, axis=0)) ** 2, axis=1)
        return power[np.fft.rfftfreq(len(stereo), 1 / sample_rate) > 4096].sum() / (power.sum() + 1e-30)
    active, ratio_db = vocal_activity(stems['vocals'], accompaniment, sample_rate)
    return dict(peak=np.abs(stems['vocals'] + accompaniment).max(), vocals_active=active, vocals_db=ratio_db,
                vocals_above_4k=share_above_4k(stems['vocals']), accomp_above_4k=share_above_4k(accompaniment))


def write_song(folder, stems, sample_rate):
    """Write each stem as 16-bit PCM and mixture.wav as their exact integer sum, scaled down if it would clip."""
    scale = 1.0
    while True:
        ints = {name: np.round(stems[name].astype(np.float64) * scale * 32767).astype(np.int32) for name in STEMS}
        mixture = sum(ints.values())
        if np.abs(mixture).max() <= 32767:
            break
        scale *= 0.95
    for name, audio in (('mixture', mixture), *ints.items()):
        sf.write(os.path.join(folder, f'{name}.wav'), audio.astype(np.int16), sample_rate, subtype='PCM_16')


def build_set(root, n_songs=6, seconds=30.0, sample_rate=44100, seed=90210, verbose=False):
    """Write root/test/Other Song NN/{mixture,vocals,drums,bass,other}.wav unless root holds this set already."""
    settings = dict(generator='other_music', version=1, n_songs=n_songs, seconds=seconds,
                    sample_rate=sample_rate, seed=seed)
    settings_path = os.path.join(root, 'other.json')
    if os.path.exists(settings_path):
        with open(settings_path) as f:
            if json.load(f) == settings:
                if verbose:
                    print(f'{root} already holds this set')
                return root
    # Build beside root and swap it in at the end, so an interrupted build never leaves half a set.
    staging = f'{os.path.abspath(root)}.partial-{os.getpid()}'
    shutil.rmtree(staging, ignore_errors=True)
    if verbose:
        print('song            synth s   peak  vocals active  vocals/acc dB  vocals >4k  acc >4k')
    for index in range(n_songs):
        started = time.perf_counter()
        stems = synth_song(seed + index, seconds, sample_rate)
        elapsed = time.perf_counter() - started
        folder = os.path.join(staging, 'test', f'Other Song {index + 1:02d}')
        os.makedirs(folder)
        write_song(folder, stems, sample_rate)
        if verbose:
            s = song_stats(stems, sample_rate)
            print(f'Other Song {index + 1:02d}  {elapsed:7.2f}  {s["peak"]:5.2f}  {s["vocals_active"]:13.0%}  '
                  f'{s["vocals_db"]:13.1f}  {s["vocals_above_4k"]:10.2%}  {s["accomp_above_4k"]:7.2%}')
    with open(os.path.join(staging, 'other.json'), 'w') as f:
        json.dump(settings, f, indent=2)
    if os.path.exists(root):
        shutil.rmtree(root)
    os.replace(staging, root)
    return root


def main():
    parser = argparse.ArgumentParser(description='Build the held-out "other music" test set (MUSDB18-HQ layout).')
    parser.add_argument('out_dir')
    parser.add_argument('--n-songs', type=int, default=6)
    parser.add_argument('--seconds', type=float, default=30.0)
    parser.add_argument('--sample-rate', type=int, default=44100)
    parser.add_argument('--seed', type=int, default=90210)
    args = parser.parse_args()
    build_set(args.out_dir, args.n_songs, args.seconds, args.sample_rate, args.seed, verbose=True)


if __name__ == '__main__':
    main()
