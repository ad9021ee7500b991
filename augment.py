"""Pitch and tempo augmentation of one source's training patch: resampling, then a phase vocoder.

A small U-Net trained on a few songs learns their singers' registers and
their tempos; shifting each source's pitch and tempo at random (vocals and
accompaniment independently, as Cohen-Hadria et al. 2019 and the small
models that top MUSDB18 do) shows it more of both. The mix is rebuilt as the
sum of the shifted parts (data.PatchDataset), so it stays their exact sum.

How one source's patch is shifted (`shift`), from the cached complex STFT
(the model's: 8192 Hz, n_fft 1024, hop 768), a little longer than the patch:

1. the inverse STFT gives back the source's samples (the cache holds the
   STFT of the source itself);
2. resampling (audio.resample, band-limited) moves every frequency by the
   pitch factor, and the tempo with it, as a tape played faster does;
3. a phase vocoder sets the tempo apart from the pitch: it analyses the
   result with the model's window at 3 times the model's overlap (hop 256,
   so each bin's phase advance tells its frequency) and reads it at the
   times that the asked tempo gives, one frame per model hop: magnitudes
   between the two nearest analysis frames, phases advanced by each bin's
   own frequency. These frames are the patch: the model's STFT of the
   shifted source, without a waveform in between.

Shifting the model's spectrogram along its frequency axis instead (the crude
form) needs no waveform, but a harmonic then spreads over bins its true
shift would not, and tempo is left out; the issue that asked for this
measured the crude form no better on one seed. Frames taken from a phase
vocoder are not quite an STFT that a waveform has (transients smear a
little between analysis frames), one reason why only a part of the patches
is shifted (`probability`).
"""

import math
from fractions import Fraction

import torch

from audio import istft, resample

PITCH_DENOMINATOR = 40  # the pitch factor is a fraction p / q, q <= 40: within 0.2 % of any factor near 1
ANALYSIS_OVERLAP = 3  # analysis frames per model hop: hop 256 for the model's 768, advances of up to 2 bins read


class PitchTempo:
    """Shift a source's patch by a random pitch (up to +-`semitones`) and tempo (up to +-`tempo`, a fraction),
    with the given probability; drawn from torch's random numbers (seeded, per DataLoader worker)."""

    def __init__(self, signal_config, semitones, tempo, probability):
        self.config, self.semitones, self.tempo, self.probability = signal_config, semitones, tempo, probability

    def frames_needed(self, frames):
        """Frames of the source to crop for a patch of `frames` frames: the fastest tempo reads that
        much more, and two frames on each side keep the edges of resampling and analysis out."""
        return math.ceil((frames - 1) * (1 + self.tempo)) + 5

    def __call__(self, spec, frames):
        """A complex (F, frames) patch from `spec` (F, frames_needed(frames)): shifted, or cut as it is."""
        if torch.rand(()).item() >= self.probability:
            return spec[:, 2:2 + frames]
        semitones = self.semitones * (2 * torch.rand(()).item() - 1)
        tempo = 1 + self.tempo * (2 * torch.rand(()).item() - 1)
        return shift(torch.from_numpy(spec), 2 ** (semitones / 12), tempo, frames, self.config).numpy()


def shift(spec, pitch, tempo, frames, config):
    """`frames` frames of the model's STFT of spec's source with its frequencies times `pitch` (to within
    0.2 %: a ratio of small numbers, which polyphase resampling computes fast) and played `tempo` times as fast.

    spec: complex (F, N), N >= (frames - 1) * tempo + 5. Output frame j is the source's time
    hop * (2 + j * tempo) of the input, as the unshifted patch spec[:, 2:2 + frames] starts at frame 2.
    """
    waveform = istft(spec, config, length=(spec.shape[-1] - 1) * config.hop_length)  # (samples,)
    ratio = Fraction(pitch).limit_denominator(PITCH_DENOMINATOR)
    resampled = torch.from_numpy(resample(waveform.numpy(), ratio.numerator, ratio.denominator))  # 1 / pitch as long
    pitch = float(ratio)
    start = 2 * config.hop_length / pitch  # frame 2 of the input, in samples of the resampled waveform
    return phase_vocoder_frames(resampled, start, config.hop_length * tempo / pitch, frames, config).to(spec.dtype)


def phase_vocoder_frames(waveform, start, step, frames, config):
    """`frames` STFT frames (complex (F, frames), the model's window) of `waveform` (samples,) read at
    samples start, start + step, ... and laid out a model hop apart: a phase vocoder.

    Each output frame sits between two analysis frames a third of a model hop apart (only those are
    computed): its magnitude is theirs, interpolated; its phase advances from the previous output
    frame's by the bin's frequency (their phase difference, unwrapped around the bin's centre) times
    the model's hop.
    """
    n_fft, hop = config.n_fft, config.hop_length // ANALYSIS_OVERLAP
    positions = (start + step * torch.arange(frames, dtype=torch.float64)) / hop  # in analysis frames
    before = positions.floor().long()
    weight = (positions - before).to(waveform.dtype)  # (frames,)
    # Analysis frames before and before + 1, centred on their hops like torch.stft(center=True).
    padded = torch.nn.functional.pad(waveform[None], (n_fft // 2, n_fft // 2), mode="reflect")[0]
    pieces = padded.unfold(0, n_fft, hop)[torch.stack([before, before + 1])]  # (2, frames, n_fft)
    spec = torch.fft.rfft(pieces * config.window_tensor(), dim=-1)  # (2, frames, F): each frame's bins in a row
    magnitude = spec.abs()
    magnitude = magnitude[0] * (1 - weight[:, None]) + magnitude[1] * weight[:, None]  # (frames, F)
    centre = 2 * math.pi * hop * torch.arange(spec.shape[-1], dtype=waveform.dtype) / n_fft  # (F,): per hop
    angle = spec.angle()
    deviation = torch.remainder(angle[1] - angle[0] - centre + math.pi, 2 * math.pi) - math.pi  # (frames, F)
    advance = torch.remainder((centre + deviation) * ANALYSIS_OVERLAP, 2 * math.pi)  # per model hop
    phase = angle[0, :1] + torch.cumsum(advance, 0) - advance  # (frames, F)
    return torch.polar(magnitude, phase).T  # (F, frames)
