"""Generate one toy multitrack song (vocals, drums, bass, other) from a seed.

Why: with no MUSDB18 on disk the project still needs training data whose
mixture is a *real* separation problem, not a frequency-band split.  So the
voice is a source-filter singer (a harmonic, glottal-like source with glides
and delayed vibrato, vowel formants that change per syllable, breath and
consonant noise, phrase rests, an instrumental intro and bridge), and the
accompaniment deliberately shares its register: pads and a lead instrument sit
in 150-1000 Hz, and the lead both answers the singer in the rests and sometimes
plays over it.

A model trained on ten such songs learns them, not singing: so every song
draws its own voice type (bass to soprano: register, formants, brightness,
breath, vibrato), sometimes a harmony voice, a mode, a tempo from 70 to 160
BPM, a drum style (or none), and from one to four accompaniment layers among
pads, a lead, a piano, mallets, an overdriven guitar and an arpeggio, each
made here and in no other way (benchmarks/other_music.py, the held-out test
synthesiser, makes its instruments otherwise).  All randomness comes from
``np.random.default_rng(seed)``, so a song is reproducible.  Synthesis is
vectorised (wavetables, FFT convolution, one STFT for the formants), so a 30 s
song renders in a fraction of a second.
"""
import os
import time

import numpy as np
import soundfile as sf
from scipy import signal
from scipy.ndimage import uniform_filter1d

SOURCES = ("vocals", "drums", "bass", "other")

# (F1, F2, F3) in Hz for the vowels a, e, i, o, u and four more; scaled per singer.
VOWELS = np.array([[800, 1200, 2600], [450, 1900, 2600], [300, 2300, 3000], [480, 820, 2600],
                   [330, 720, 2400], [660, 1700, 2400], [620, 1200, 2400], [400, 1900, 2550],
                   [500, 1400, 1700]], float)
FORMANT_BW = np.array([100.0, 130.0, 200.0])
FORMANT_GAIN = np.array([1.0, 1.0, 0.7])
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10),
          "mixolydian": (0, 2, 4, 5, 7, 9, 10), "harmonic minor": (0, 2, 3, 5, 7, 8, 11)}
# Chord roots as scale degrees, using only degrees that give major/minor triads in major and minor.
PROGRESSIONS = {"major": ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 0, 4)),
                "minor": ((0, 5, 2, 6), (0, 3, 6, 2), (0, 6, 5, 6), (0, 3, 4, 0))}
FAMILY = {"major": "major", "mixolydian": "major", "minor": "minor", "dorian": "minor", "harmonic minor": "minor"}
# Voice types: (register centre range, MIDI), formant scale.
VOICES = {"bass": ((45, 50), 0.92), "baritone": ((49, 55), 1.0), "tenor": ((54, 61), 1.05),
          "alto": ((58, 64), 1.12), "mezzo": ((61, 67), 1.16), "soprano": ((65, 72), 1.22)}


def _hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, float) - 69.0) / 12.0)


def _rms(x):
    return float(np.sqrt(np.sum(np.square(x)) / max(np.size(x), 1) + 1e-20))


def _pan(mono, pos):
    """Constant-power pan of a mono signal to stereo; pos in [-1 (left), 1 (right)]."""
    th = (pos + 1.0) * np.pi / 4.0
    return np.stack([mono * np.cos(th), mono * np.sin(th)], axis=1)


def _osc(freq, sr, amps, phase0=0.0, size=4096):
    """Wavetable oscillator for a per-sample frequency array.  Harmonics past
    0.45*sr at the highest frequency are dropped, so nothing aliases."""
    nh = max(1, min(len(amps), int(0.45 * sr / freq.max())))
    spec = np.zeros(size // 2 + 1, complex)
    spec[1:nh + 1] = -0.5j * size * np.asarray(amps[:nh])  # irfft -> sum of sines
    table = np.fft.irfft(spec, size)
    phase = phase0 + np.cumsum(freq) / sr
    return table[(phase * size).astype(np.int64) % size]


def _env(m, sr, att, tau, sus=0.0, rel=0.03):
    """Linear attack, exponential decay towards ``sus``, linear release at the end."""
    t = np.arange(m) / sr
    e = np.minimum(t / att, 1.0) * (sus + (1.0 - sus) * np.exp(-t / tau))
    return e * np.clip((m / sr - t) / rel, 0.0, 1.0)


def _add_notes(out, sr, notes, voice):
    """Render note events (start_s, dur_s, midi, velocity) with ``voice(samples, midi)``."""
    for start, dur, midi, vel in notes:
        a, m = int(start * sr), int(dur * sr)
        if a < len(out) and m > 0:
            b = min(len(out), a + m)
            out[a:b] += vel * voice(m, midi)[: b - a]
    return out


def _reverb(x, rng, sr, t60, wet):
    """Decorrelated exponential-noise room per channel, so stems carry reverb tails."""
    t = np.arange(int(t60 * sr)) / sr
    ir = rng.standard_normal((len(t), 2)) * np.exp(-6.9 * t / t60)[:, None]
    ir[: int(0.012 * sr)] = 0.0  # pre-delay
    ir *= wet / np.sqrt(np.sum(ir ** 2, axis=0))
    return x + signal.oaconvolve(x.astype(np.float32), ir.astype(np.float32), axes=0)[: len(x)]


def draw_voice(rng):
    """(voice, register centre in MIDI) of a singer of a random type (VOICES): formants, source tilt
    (bright 1.1 to soft 2.2), breath, vibrato; the song's notes lie within 7 semitones of the centre."""
    (low, high), formants = VOICES[str(rng.choice(list(VOICES)))]
    voice = {"formants": formants * rng.uniform(0.96, 1.04), "tilt": rng.uniform(1.1, 2.2),
             "breath": rng.uniform(0.02, 0.2), "vibrato": (0.1, rng.uniform(0.3, 0.7)),
             "vibrato_rate": rng.uniform(4.5, 7.0)}
    return voice, rng.uniform(low, high)


def _syllables(rng, spb, voc_bars, pitches):
    """Sung syllables (start_s, dur_s, midi, vowel, phrase) on the beat grid, in phrases of <= 2 bars
    with rests between them."""
    syl, idx, phrase = [], len(pitches) // 2, 0
    bars = np.flatnonzero(voc_bars)
    for run in np.split(bars, np.flatnonzero(np.diff(bars) > 1) + 1):
        for p0 in range(run[0], run[-1] + 1, 2) if len(run) else ():
            t, end = p0 * 4 + rng.choice([0, 0, 0.5, 1]), min(p0 + 2, run[-1] + 1) * 4
            end -= rng.choice([0.5, 1, 1, 1.5])
            phrase += 1
            while end - t >= 0.5:
                d = min(rng.choice([0.5, 0.5, 1, 1, 1, 1.5, 2]), end - t)
                idx = int(np.clip(idx + rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3]), 0, len(pitches) - 1))
                syl.append((t * spb, d * spb, pitches[idx], rng.integers(len(VOWELS)), phrase))
                t += d
    return syl


def _vocals(rng, sr, n, spb, voc_bars, pitches, voice, scale_notes):
    """The singer and, in some songs, a second voice a diatonic third above in half of the phrases."""
    syl = _syllables(rng, spb, voc_bars, pitches)
    if not syl:
        return np.zeros((n, 2)), np.zeros(n)
    lead, amp = _sing(rng, sr, n, syl, voice)
    out = _pan(lead, rng.uniform(-0.1, 0.1))
    if rng.random() < 0.35:
        chosen = rng.random(syl[-1][4] + 1) < 0.5
        third = [(t0 + 0.012, d, scale_notes[np.searchsorted(scale_notes, m) + 2], v, ph)
                 for t0, d, m, v, ph in syl if chosen[ph]]
        if third:
            out += _pan(_sing(rng, sr, n, third, voice)[0] * rng.uniform(0.4, 0.7), rng.uniform(-0.4, 0.4))
    return out, amp


def _sing(rng, sr, n, syl, voice):
    """One voice singing the syllables: pitch glides, delayed vibrato, and a per-syllable vowel
    formant envelope applied to a harmonic source (tilt per voice) in the STFT domain. Returns
    (mono samples, amplitude envelope)."""
    tt = np.arange(n) / sr
    pitch_times, pitch_midi, vibrato_times, vibrato_depths = [], [], [], []
    amp, cons = np.zeros(n), np.zeros(n)
    for i, (t0, d, m, _, phrase) in enumerate(syl):
        g = min(0.08, 0.3 * d)  # glide from the previous note (scoop up at phrase start)
        if i == 0 or syl[i - 1][4] != phrase:
            pitch_times.append(t0), pitch_midi.append(m - rng.uniform(0.3, 1.0))
        pitch_times += [t0 + g, t0 + d]
        pitch_midi += [m, m]
        vibrato_delay, vibrato_ramp = min(0.25, 0.35 * d), min(0.3, 0.4 * d)  # vibrato onset delay and ramp
        vibrato_times += [t0, t0 + vibrato_delay, t0 + vibrato_delay + vibrato_ramp, t0 + 0.95 * d]
        depth = rng.uniform(*voice["vibrato"])  # semitones
        vibrato_depths += [0.0, 0.0, depth, depth]
        a, m_len = int(t0 * sr), int((d - min(0.07, 0.25 * d)) * sr)  # short gap after
        if a < n:
            b = min(n, a + m_len)
            amp[a:b] = rng.uniform(0.7, 1.0) * _env(m_len, sr, 0.03, 0.8, 0.7, 0.05)[: b - a]
            if rng.random() < 0.45:  # consonant burst leading into the syllable
                c = int(rng.uniform(0.02, 0.06) * sr)
                c0 = max(0, a - c // 2)
                burst = rng.uniform(0.3, 0.8) * np.exp(-np.arange(c) / (0.4 * c))
                cons[c0:c0 + c] = burst[: len(cons[c0:c0 + c])]
    vib = np.interp(tt, vibrato_times, vibrato_depths) * np.sin(2 * np.pi * voice["vibrato_rate"] * tt)
    grid = np.arange(0.0, n / sr + 0.3, 0.15)
    drift = np.interp(tt, grid, rng.normal(0.0, 0.06, len(grid)))
    f0 = _hz(np.interp(tt, pitch_times, pitch_midi) + vib + drift)
    # Harmonic source via the Chebyshev recurrence sin((k+1)p) = 2cos(p)sin(kp) - sin((k-1)p).
    # float32 is 4x faster here and its error stays below 1e-4.
    phi = (2 * np.pi * (np.cumsum(f0) / sr % 1.0)).astype(np.float32)
    c2, s_prev, s = 2.0 * np.cos(phi), np.zeros(n, np.float32), np.sin(phi)
    src, lim, fmax, f0_32 = s.copy(), 0.45 * sr, f0.max(), f0.astype(np.float32)
    for k in range(2, 41):
        s_prev, s = s, c2 * s - s_prev
        w = k ** -voice["tilt"]
        if k * fmax > 0.85 * lim:  # fade harmonics out before Nyquist
            w = w * np.clip((lim - k * f0_32) / (0.15 * lim), 0.0, 1.0)
        src += w * s
    src = amp * (src + voice["breath"] * rng.standard_normal(n))  # + aspiration
    nper = 1 << int(round(np.log2(sr * 0.046)))
    f, t, Z = signal.stft(src, sr, nperseg=nper, noverlap=3 * nper // 4)
    starts, vowel = np.array([x[0] for x in syl]), np.array([x[3] for x in syl])
    F = VOWELS[vowel[np.clip(np.searchsorted(starts, t) - 1, 0, len(syl) - 1)]]
    F = uniform_filter1d(F * voice["formants"], 5, axis=0)  # coarticulation
    env = np.full(Z.shape, 0.03, np.float32)  # spectral envelope (freq, frame)
    for g, fk, bw in zip(FORMANT_GAIN, F.T.astype(np.float32), FORMANT_BW):
        env += g / (1.0 + ((f[:, None].astype(np.float32) - fk) / bw) ** 2)
    y = signal.istft(Z * env, sr, nperseg=nper, noverlap=3 * nper // 4)[1]
    y = np.pad(y, (0, max(0, n - len(y))))[:n]
    hiss = np.diff(rng.standard_normal(n), 2, prepend=[0.0, 0.0]) / 2.5  # high-passed noise
    return y + hiss * cons * _rms(y[amp > 0.1]), amp


def _drums(rng, sr, n, spb, n_bars, start_bar, fill_bars):
    """Kick (sine sweep), snare (noise + tone) and hats (high-passed noise) on a
    swung, humanised 16th grid, with snare fills before each vocal entry; a
    half-time feel in some songs, no drums at all in a few."""
    style = rng.choice(["straight", "half", "none"], p=[0.65, 0.23, 0.12])
    if style == "none":
        return np.zeros((n, 2))
    t = np.arange(int(0.5 * sr)) / sr
    sweep = rng.uniform(40, 60) + rng.uniform(60, 110) * np.exp(-t / rng.uniform(0.02, 0.05))
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.exp(-t / rng.uniform(0.12, 0.3))
    noise = rng.standard_normal(len(t))
    snare = ((noise + 0.7 * np.diff(noise, prepend=0.0)) * np.exp(-t / rng.uniform(0.06, 0.15))
             + 1.5 * np.sin(2 * np.pi * rng.uniform(180, 260) * t) * np.exp(-t / 0.05))
    hp = np.diff(noise, 2, prepend=[0.0, 0.0])
    hat, open_hat = (hp * np.exp(-t / tau) for tau in (rng.uniform(0.02, 0.05), 0.2))
    pats = np.zeros((4, 16))  # kick, snare, hat, open hat velocities per 16th
    pats[0, [0, 8]] = 1.0
    pats[0, rng.choice([2, 3, 6, 7, 10, 11, 14], rng.integers(0, 3), replace=False)] = 0.8
    pats[1, rng.random(16) < 0.1] = 0.25  # ghost notes
    pats[1, [4, 12] if style == "straight" else [8]] = 1.0
    pats[2, :: rng.choice([1, 2])] = 0.5
    pats[2, ::4] = 0.9
    if rng.random() < 0.5:
        pats[2, 14], pats[3, 14] = 0.0, 0.7
    vel = np.tile(pats, n_bars) * rng.uniform(0.8, 1.0, (4, 16 * n_bars))
    for b in fill_bars:
        vel[1, 16 * b + 13: 16 * b + 16] = rng.uniform(0.5, 0.9, 3)
    vel[:, : 16 * start_bar] = 0.0
    steps = np.arange(16 * n_bars)
    times = steps * spb / 4 + (steps % 2) * rng.uniform(0, 0.12) * spb / 4
    pos = np.clip(np.round((times + rng.normal(0, 0.003, len(steps))) * sr).astype(int), 0, None)
    out = np.zeros((n, 2))
    pans, gains = (0.0, rng.uniform(-0.1, 0.1), *rng.uniform(0.2, 0.5, 2) * rng.choice([-1, 1])), \
        (1.0, rng.uniform(0.6, 0.9), rng.uniform(0.15, 0.35), rng.uniform(0.1, 0.25))
    for v, shot, p, g in zip(vel, (kick, snare, hat, open_hat), pans, gains):
        track, shot = np.zeros(n), g * shot / np.abs(shot).max()
        for a, vel_a in zip(pos[(v > 0) & (pos < n)], v[(v > 0) & (pos < n)]):
            track[a:a + len(shot)] += vel_a * shot[: n - a]
        out += _pan(track, p)
    return out


def _bass(rng, sr, n, spb, chords, deg2midi):
    """Eighth-note bass pattern (root / fifth / octave, with ties) following the chords."""
    slots = rng.choice([0, 0, 0, 4, 7, -1, -1], 8)
    slots[0] = 0
    on = np.flatnonzero(slots >= 0)
    durs = np.diff(np.append(on, 8)) * 0.5 * spb * rng.uniform(0.75, 0.95)
    notes = [((4 * b + 0.5 * i) * spb, d, deg2midi(c + slots[i]), rng.uniform(0.8, 1.0))
             for b, c in enumerate(chords) for i, d in zip(on, durs)]
    amps = np.arange(1, 9) ** -rng.uniform(1.2, 2.2)
    tau, sus = rng.uniform(0.15, 0.5), rng.uniform(0.3, 0.7)

    def voice(m, midi):
        return _osc(np.full(m, _hz(midi)), sr, amps) * _env(m, sr, 0.005, tau, sus)

    return _pan(_add_notes(np.zeros(n), sr, notes, voice), rng.uniform(-0.05, 0.05))


def _other(rng, sr, n, spb, chords, deg2midi, lead_pitches, voc_amp, voc_bars):
    """One to four layers: each of pads, a lead, a piano, mallets, an overdriven guitar and an
    arpeggio with its own chance, and at least one that plays the chords."""
    layers = [name for name, chance in (("pad", 0.55), ("lead", 0.65), ("piano", 0.35), ("mallets", 0.2),
                                         ("guitar", 0.25), ("arpeggio", 0.25)) if rng.random() < chance]
    if not {"pad", "piano", "guitar"} & set(layers):
        layers.append(rng.choice(["pad", "piano", "guitar"]))
    out = np.zeros((n, 2))
    for name in layers:
        if name == "lead":
            part = _lead(rng, sr, n, spb, lead_pitches, voc_amp, voc_bars)
        else:
            part = {"pad": _pad, "piano": _piano, "mallets": _mallets, "guitar": _guitar,
                    "arpeggio": _arpeggio}[name](rng, sr, n, spb, chords, deg2midi)
        sounding = part[np.abs(part).max(1) > 1e-3 * np.abs(part).max()]
        out += part * rng.uniform(0.5, 1.0) / _rms(sounding) if len(sounding) else 0
    return out


def _pad(rng, sr, n, spb, chords, deg2midi):
    """Detuned saws or organ, sustained or stabbed chords, wide stereo."""
    k = np.arange(1, 31)
    amps = (k ** -rng.uniform(1.0, 1.5) if rng.random() < 0.5 else
            np.array([1, 0.6, 0.4, 0.25, 0, 0.2, 0, 0.15]) * rng.uniform(0.5, 1, 8))
    if rng.random() < 0.6:  # sustained chords, otherwise rhythmic stabs
        hits, att, tau, sus, rel = [(0.0, 4.3)], rng.uniform(0.05, 0.4), 1.0, 1.0, 0.3
    else:
        hits = [(0.5 * i, 0.5 * rng.choice([1, 2])) for i in np.flatnonzero(rng.random(8) < 0.45)]
        att, tau, sus, rel = 0.01, rng.uniform(0.15, 0.4), 0.3, 0.05
    degs = [0, 2, 4, 6] if rng.random() < 0.4 else [0, 2, 4]
    notes = [((4 * b + h0) * spb, hd * spb, m - 12 * (m >= 79), 0.3)
             for b, c in enumerate(chords) for h0, hd in hits for m in deg2midi(c + np.array(degs), 2)]
    pad, spread = np.zeros((n, 2)), rng.uniform(0.4, 0.8)
    for ch, cents in enumerate(rng.uniform(4, 12) * np.array([-1, 1])):
        def voice(m, midi, cents=cents):
            return _osc(np.full(m, _hz(midi + cents / 100)), sr, amps, rng.random()) * _env(m, sr, att, tau, sus, rel)

        pad += _pan(_add_notes(np.zeros(n), sr, notes, voice), spread * (2 * ch - 1))
    return pad


def _lead(rng, sr, n, spb, lead_pitches, voc_amp, voc_bars):
    """A lead (pluck / flute / synth) in the singer's register that fills the vocal rests, plays the
    instrumental sections and sometimes plays over the singing."""
    k = np.arange(1, 31)
    # Lead: modes per bar 0 = silent, 1 = fill vocal rests, 2 = play freely.
    n_slots = len(voc_bars) * 8
    slot_at = np.clip((np.arange(n_slots) * 0.5 * spb * sr).astype(int), 0, n - 1)
    busy = np.maximum.reduceat(voc_amp, slot_at) > 0.05
    mode = np.where(voc_bars, rng.choice([0, 1, 1, 2], len(voc_bars)),
                    np.where(rng.random(len(voc_bars)) < 0.85, 2, 0))
    notes, idx, i = [], len(lead_pitches) // 2, 0
    while i < n_slots:
        if (mode[i // 8] == 2 or (mode[i // 8] == 1 and not busy[i])) and rng.random() < 0.7:
            d = rng.choice([1, 1, 2, 2, 3, 4])
            idx = int(np.clip(idx + rng.choice([-3, -2, -1, 0, 1, 2, 3]), 0, len(lead_pitches) - 1))
            notes.append((i * 0.5 * spb, d * 0.5 * spb, lead_pitches[idx], rng.uniform(0.7, 1.0)))
            i += d
        else:
            i += 1
    style, vib = rng.integers(3), rng.uniform(0.05, 0.25)
    bright, dull = k ** -rng.uniform(0.6, 1.0), k ** -2.0
    tau_b, tau_d = rng.uniform(0.06, 0.15), rng.uniform(0.4, 0.9)

    def lead_voice(m, midi):
        t = np.arange(m) / sr
        f = _hz(midi) * 2 ** (vib * np.sin(2 * np.pi * 5.0 * t) * np.minimum(t / 0.3, 1) / 12)
        if style == 0:  # plucked string: bright partials die fast, dull ones ring
            return (_osc(f, sr, bright) * _env(m, sr, 0.003, tau_b)
                    + _osc(f, sr, dull) * _env(m, sr, 0.003, tau_d))
        if style == 1:  # flute: few harmonics plus breath
            tone = _osc(f, sr, [1, 0.4, 0.15, 0.08, 0.04]) + 0.05 * rng.standard_normal(m)
            return tone * _env(m, sr, 0.06, 1.0, 0.9, 0.05)
        return _osc(f, sr, np.where(k % 2, 1.0 / k, 0.0)) * _env(m, sr, 0.01, 0.4, 0.6)

    return _pan(_add_notes(np.zeros(n), sr, notes, lead_voice), rng.uniform(0.25, 0.6) * rng.choice([-1, 1]))


def _rhythm(rng, chords, length_beats):
    """(start_beat, beats) hits of a random one-bar rhythm of eighths, the bar's first always on."""
    on = np.flatnonzero(rng.random(8) < rng.uniform(0.3, 0.7)) if rng.random() < 0.7 else np.array([0])
    on = np.union1d(on, [0])
    return [(4 * b + 0.5 * i, min(length_beats, 0.5 * (np.append(on, 8)[j + 1] - i)))
            for b in range(len(chords)) for j, i in enumerate(on)]


def _piano(rng, sr, n, spb, chords, deg2midi):
    """Chords struck on a rhythm; partials a little sharp, as a stiff string's, dying faster the higher."""
    stiffness, tilt, tau = rng.uniform(1e-4, 6e-4), rng.uniform(1.0, 1.8), rng.uniform(0.6, 1.5)
    notes = [(h * spb, d * spb + 0.3, m, rng.uniform(0.6, 1.0)) for h, d in _rhythm(rng, chords, 4)
             for m in deg2midi(chords[int(h // 4)] + np.array([0, 2, 4, 7]), 2 + (rng.random() < 0.3))]
    ratios = np.arange(1, 11)[:, None] * np.sqrt(1 + stiffness * np.arange(1, 11)[:, None] ** 2)
    return _pan(_struck(sr, n, notes, ratios, ratios ** -tilt, tau / (1 + 0.5 * ratios)), rng.uniform(-0.3, 0.3))


def _struck(sr, n, notes, ratios, levels, decays):
    """Notes of a struck instrument: partials at `ratios` times the note, each dying at its own rate;
    each pitch is rendered once (as long as its longest note) and its notes cut from it."""
    longest = {}
    for _, dur, midi, _ in notes:
        longest[midi] = max(longest.get(midi, 0), int(dur * sr))
    t = np.arange(max(longest.values(), default=0)) / sr
    tones = {midi: (levels * (_hz(midi) * ratios < 0.45 * sr) * np.sin(2 * np.pi * _hz(midi) * ratios * t[:m])
                    * np.exp(-t[:m] / decays)).sum(0) for midi, m in longest.items()}
    return _add_notes(np.zeros(n), sr, notes, lambda m, midi: tones[midi][:m] * _env(m, sr, 0.002, 10.0, 1.0, 0.1))


def _mallets(rng, sr, n, spb, chords, deg2midi):
    """Eighth-note arpeggios on a struck bar: partials at 1, 3.9 and 9.5 times the note, short-lived."""
    notes = [((4 * b + 0.5 * i) * spb, 0.9, deg2midi(c + rng.choice([0, 2, 4, 7]), 3), rng.uniform(0.5, 1.0))
             for b, c in enumerate(chords) for i in range(8) if rng.random() < 0.8]
    decays = rng.uniform(0.3, 0.8) * np.array([[1.0], [0.3], [0.1]])
    return _pan(_struck(sr, n, notes, np.array([[1.0], [3.93], [9.54]]), np.array([[1.0], [0.35], [0.12]]), decays),
                rng.uniform(-0.5, 0.5))


def _guitar(rng, sr, n, spb, chords, deg2midi):
    """Power chords (root, fifth, octave) of saws, overdriven (tanh) and darkened by a low-pass
    cabinet: chugged eighths or held."""
    amps, drive = 1.0 / np.arange(1, 25), rng.uniform(2.0, 8.0)
    length = 0.45 if rng.random() < 0.5 else 4
    notes = [(h * spb, d * spb, deg2midi(chords[int(h // 4)], 1) + 12 + step, 0.5)
             for h, d in _rhythm(rng, chords, length) for step in (0, 7, 12)]

    def voice(m, midi):
        return _osc(np.full(m, _hz(midi)), sr, amps, rng.random()) * _env(m, sr, 0.004, 0.5, 0.7, 0.02)

    dry = _add_notes(np.zeros(n), sr, notes, voice)
    sos = signal.butter(2, min(rng.uniform(1800, 4000), 0.45 * sr), fs=sr, output="sos")
    wet = signal.sosfilt(sos, np.tanh(drive * dry / max(np.abs(dry).max(), 1e-9)))
    return _pan(wet, rng.uniform(-0.7, 0.7))


def _arpeggio(rng, sr, n, spb, chords, deg2midi):
    """The chord's tones up and down in sixteenths, a short square-ish pluck an octave or two up."""
    amps, tau = np.where(np.arange(1, 16) % 2, 1.0 / np.arange(1, 16), 0.0), rng.uniform(0.06, 0.2)
    order = [0, 2, 4, 7, 4, 2] if rng.random() < 0.5 else [0, 2, 4, 7]
    notes = [((4 * b + 0.25 * i) * spb, 0.25 * spb, deg2midi(c + order[i % len(order)], 3 + (rng.random() < 0.4)),
              0.8) for b, c in enumerate(chords) for i in range(16)]

    def voice(m, midi):
        return _osc(np.full(m, _hz(midi)), sr, amps) * _env(m, sr, 0.002, tau)

    return _pan(_add_notes(np.zeros(n), sr, notes, voice), rng.uniform(-0.6, 0.6))




def synth_song(seed: int, seconds: float, sample_rate: int) -> dict[str, np.ndarray]:
    """Return {'vocals','drums','bass','other'} -> float32 arrays of shape (samples, 2) (stereo).

    Deterministic in ``seed``.  Tempo, key, mode, progression, song form, voice
    type, timbres, layers, panning and levels are drawn per seed.  The vocals' RMS
    over their active parts roughly equals the accompaniment's there (pop-like
    balance), and all stems share one gain so the peak of their sum is <= 0.85.
    """
    rng = np.random.default_rng(seed)
    sr, n = int(sample_rate), int(round(seconds * sample_rate))
    spb = 60.0 / rng.uniform(70, 160)
    n_bars = max(1, int(np.ceil(n / sr / (4 * spb))))
    mode = str(rng.choice(list(SCALES)))
    scale, prog = np.array(SCALES[mode]), PROGRESSIONS[FAMILY[mode]][rng.integers(4)]
    chords = np.array([prog[b % 4] for b in range(n_bars)])
    tonic = 28 + int(rng.integers(12))  # bass-octave tonic, E1..D#2

    def deg2midi(deg, octave=0):
        deg = np.asarray(deg)
        return tonic + 12 * (octave + deg // 7) + scale[deg % 7]

    # Song form: instrumental intro and bridge, vocals elsewhere.
    voc_bars = np.ones(n_bars, bool)
    intro = max(1, int(round(rng.uniform(0.1, 0.18) * n_bars)))
    bridge = max(1, int(round(rng.uniform(0.08, 0.14) * n_bars)))
    b0 = intro + int(round(max(0, n_bars - intro - bridge) * rng.uniform(0.45, 0.6)))
    voc_bars[:intro], voc_bars[b0:b0 + bridge] = False, False
    fills = np.flatnonzero(~voc_bars[:-1] & voc_bars[1:])
    voice, centre = draw_voice(rng)
    scale_notes = deg2midi(np.arange(60))
    pitches = scale_notes[np.abs(scale_notes - centre) <= 7].astype(float)

    vocals, voc_amp = _vocals(rng, sr, n, spb, voc_bars, pitches, voice, scale_notes)
    drums = _drums(rng, sr, n, spb, n_bars, int(rng.integers(0, intro)), fills)
    bass = _bass(rng, sr, n, spb, chords, deg2midi)
    other = _other(rng, sr, n, spb, chords, deg2midi, pitches, voc_amp, voc_bars)
    vocals = _reverb(vocals, rng, sr, rng.uniform(0.4, 1.0), rng.uniform(0.15, 0.35))
    other = _reverb(other, rng, sr, rng.uniform(0.4, 1.0), rng.uniform(0.1, 0.3))

    drums *= 10 ** (rng.uniform(-3, 3) / 20) / _rms(drums)
    bass *= 0.8 * 10 ** (rng.uniform(-4, 2) / 20) / _rms(bass)
    other *= 0.9 * 10 ** (rng.uniform(-3, 3) / 20) / _rms(other)
    active = voc_amp > 0.05
    if active.any():
        vocals *= _rms((drums + bass + other)[active]) * 10 ** (rng.uniform(-4, 3) / 20) / _rms(vocals[active])
    stems = dict(zip(SOURCES, (vocals, drums, bass, other)))
    gain = rng.uniform(0.5, 0.85) / max(np.abs(sum(stems.values())).max(), 1e-9)
    return {name: np.nan_to_num(x * gain).astype(np.float32) for name, x in stems.items()}


if __name__ == "__main__":  # python toy_music.py: a song's stems and mix in /tmp/toy_demo, and its time
    t0, rate = time.perf_counter(), 22050
    song = synth_song(0, 30.0, rate)
    print(f"synth_song(0, 30 s, {rate} Hz): {time.perf_counter() - t0:.3f} s; the stems in /tmp/toy_demo")
    os.makedirs("/tmp/toy_demo", exist_ok=True)
    for name, x in [*song.items(), ("mixture", sum(song.values()))]:
        sf.write(f"/tmp/toy_demo/{name}.wav", x, rate)
