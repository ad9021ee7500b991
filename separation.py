"""The separation algorithm on arrays: a song in, its vocals and accompaniment out.

No files and no flags here: inference.py reads and writes the files,
evaluate.py scores, and both call these public functions.

    mix_magnitude     |STFT| of the mono mix at a signal config's rate: the network's input
    predict_mask      the network's mask for a song, and the magnitude it read
    reconstruct       vocals and accompaniment of a song from a mask
    separate          predict_mask then reconstruct, in one call
    plan_blocks, song_scale
                      a long song in blocks, with the same result as in one piece

How the vocals are rebuilt (SeparationOptions.reconstruction):

    full (default)  the mask is interpolated onto each channel's STFT at the
                    input's own rate (synthesis_config) and multiplies it
                    there: the mix's phase, rate and whole band are kept
    lab             the lab's step: the mask multiplies each channel's STFT at
                    8192 Hz, and the vocals are resampled back (they stop at
                    4096 Hz)

Either way accompaniment = mix - vocals, so the two sum back to the mix.
Arrays are numpy (samples, channels) float32; spectrograms and masks are torch
(freq_bins, frames).
"""

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from spectral import SignalConfig, istft, istft_of_masked_stft, magnitude_scale, resample, stft, to_mono
from cli import UserError

# How the network reads a song (network_input). "whole": the whole
# spectrogram (of a block, below) in one pass; the network is convolutional,
# so every frame is computed once and sees its real neighbours, with no patch
# edges. "patches": the training size, 128 frames, overlapping by OVERLAP and
# blended with a smooth window, so no frame relies on the edge of a single
# patch; twice the work. benchmarks/README.md has both measured.
OVERLAP = 0.5
# Songs up to BLOCK_SECONDS (+ margins) are separated in one piece; longer ones
# in blocks of that length, each read with MARGIN_SECONDS of context on both
# sides (more than one patch), so memory stays flat however long the song is.
# Both are rounded up to whole patch hops (6 s), so that every block sees the
# same STFT frames and patches as the whole song would: the result is the
# same as separating the song in one piece.
BLOCK_SECONDS = 300
MARGIN_SECONDS = 18
# The full-band reconstruction's STFT: windows of about 93 ms (4096 samples at
# 44.1 kHz), SYNTHESIS_OVERLAP windows over every sample, so a hop of a
# quarter window (see synthesis_config; both chosen by measured SDR in
# benchmarks/README.md).
SYNTHESIS_SECONDS = 4096 / 44100
SYNTHESIS_OVERLAP = 4
# Above 4096 Hz (the model's band) every frame's mask is the mean of its top band.
HIGH_BAND_HZ = (3000, 4096)


class SeparationError(UserError):
    """A problem with the audio asked to separate."""


@dataclass(frozen=True)
class SeparationOptions:
    """How a song is separated: the choices inference.py and evaluate.py offer as flags (cli.add_separation_flags).

    Args:
        reconstruction: "full" (the mask applied at the input's own rate,
            vocals in the whole band) or "lab" (the lab's: rebuilt at 8192 Hz,
            vocals below 4096 Hz).
        network_input: "whole" (one pass over the song) or "patches" (the
            training's 128-frame patches, overlapping by OVERLAP).
    """

    reconstruction: str = "full"
    network_input: str = "whole"

    def __post_init__(self):
        if self.reconstruction not in ("full", "lab"):
            raise ValueError(f"reconstruction must be 'full' or 'lab', got {self.reconstruction!r}")
        if self.network_input not in ("whole", "patches"):
            raise ValueError(f"network_input must be 'whole' or 'patches', got {self.network_input!r}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        """The options held in `values` (a to_dict(), a record holding one, or parsed flags); other keys ignored,
        a missing option takes its default."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


# --------------------------------------------------------------------------
# The network's mask
# --------------------------------------------------------------------------

def mix_magnitude(audio, sample_rate, signal_config):
    """|STFT| of the mono mix of `audio` at `signal_config`'s rate: (freq_bins, frames).

    Computed as training computes it (channel mean, resample, STFT), with
    n_fft zeros appended so that the last samples lie under several frames
    (see `lab_vocals`).
    """
    mono = resample(to_mono(audio), sample_rate, signal_config.sample_rate)  # (n_low,)
    padded = np.pad(mono, (0, signal_config.n_fft))  # (n_low + n_fft,)
    return stft(torch.from_numpy(padded), signal_config).abs()  # (F, T)


def predict_mask(model, signal_config, audio, sample_rate, network_input="whole", scale=None):
    """The network's mask for a song, and the mix magnitude it was computed from.

    Args:
        audio: float32 (samples, channels) or (samples,), any sample rate.
        scale: the magnitude scale; None computes the paper's (1 / the mix's
            largest magnitude), as a whole song needs. A block of a long song
            gets the whole song's (song_scale).
    Returns:
        (mix magnitude, mask), both (freq_bins, frames) at the model's STFT:
        what the figure of mix / mask / vocals shows.
    """
    if audio.shape[0] == 0:
        raise SeparationError("the audio is empty")
    if not np.isfinite(audio).all():
        raise SeparationError("the audio holds NaN or infinite samples")
    mix = mix_magnitude(audio, sample_rate, signal_config)  # (F, T)
    if scale is None:
        scale = magnitude_scale(mix)
    return mix, compute_mask(model, mix * scale, signal_config.patch_frames, network_input)


def _patch_hop(patch_frames):
    """Frames between the starts of two patches (OVERLAP of them shared): 64 for 128-frame patches.

    The one place it is derived: compute_mask tiles with it, and plan_blocks
    puts block edges on its multiples, which keeps block-wise == whole.
    """
    return max(1, round(patch_frames * (1 - OVERLAP)))


@torch.inference_mode()
def compute_mask(model, magnitude, patch_frames, network_input="whole", batch_size=8):
    """The network's mask for a whole scaled magnitude spectrogram (freq_bins, frames).

    With network_input "whole", one pass over all the frames (at least
    patch_frames: a shorter song is padded with silence, as in training); with
    "patches", overlapping patches blended with a Hann-shaped weight (strictly
    positive, so every frame is covered). Returns (freq_bins, frames) in [0, 1].
    """
    device = next(model.parameters()).device
    bins, frames = magnitude.shape
    padded = max(frames, patch_frames)
    if network_input == "whole":
        x = torch.nn.functional.pad(magnitude, (0, padded - frames))  # (F, T')
        return model(x[None].to(device)).float().cpu()[0, :, :frames]  # (F, T)
    hop = _patch_hop(patch_frames)
    starts = list(range(0, padded - patch_frames + 1, hop))
    if starts[-1] + patch_frames < padded:
        starts.append(padded - patch_frames)  # the last patch ends on the last frame
    x = torch.zeros(bins, padded)
    x[:, :frames] = magnitude
    weight = torch.hann_window(patch_frames + 2, periodic=False)[1:-1]  # (P,), > 0
    mask, total = torch.zeros(bins, padded), torch.zeros(padded)
    for i in range(0, len(starts), batch_size):
        batch = starts[i:i + batch_size]
        patches = torch.stack([x[:, s:s + patch_frames] for s in batch]).to(device)  # (B, F, P)
        out = model(patches).float().cpu()  # (B, F, P)
        for s, m in zip(batch, out):
            mask[:, s:s + patch_frames] += m * weight
            total[s:s + patch_frames] += weight
    return (mask / total)[:, :frames]


# --------------------------------------------------------------------------
# From the mask back to audio
# --------------------------------------------------------------------------

def reconstruct(audio, sample_rate, mask, mask_config, options=SeparationOptions(), start=0):
    """(vocals, accompaniment) of `audio` from a mask over the STFT of its mono mix.

    Args:
        audio: float32 (samples, channels).
        mask: (freq_bins, frames) over the STFT `mask_config` of the mono mix
            as mix_magnitude computes it: the model's signal_config for the
            network's mask; evaluate.py's oracle masks use either that or
            synthesis_config(sample_rate), the full-band reconstruction's own.
        start: where `audio` begins in a longer song, in samples (a block):
            the full-band frames are then placed on the whole song's grid.
    Returns:
        float32 (samples, channels) each; accompaniment = audio - vocals.
    """
    if options.reconstruction == "lab":
        vocals = lab_vocals(audio, sample_rate, mask, mask_config)
    else:
        vocals = full_band_vocals(audio, sample_rate, mask, mask_config, start)
    vocals = np.ascontiguousarray(vocals, dtype=np.float32)
    return vocals, audio - vocals


def lab_vocals(audio, sample_rate, mask, mask_config):
    """The lab's reconstruction: the vocals rebuilt at the mask's rate, then resampled.

    The mask multiplies each channel's complex STFT at 8192 Hz (mixture
    phase), the ISTFT gives the vocals at 8192 Hz, and they are resampled to
    the input's rate: they stop at 4096 Hz, and the hop of 3/4 of the window
    lets every jump of the mask be heard as an edge. The audio gets n_fft
    zeros at the end first: the last samples would otherwise lie under the
    tail of a single window, and the ISTFT would divide them by almost nothing.
    Returns (samples, channels).
    """
    low = resample(audio, sample_rate, mask_config.sample_rate)  # (n_low, C)
    padded = np.pad(low.T, ((0, 0), (0, mask_config.n_fft)))  # (C, n_low + n_fft)
    spec = stft(torch.from_numpy(padded), mask_config)  # (C, F, T)
    vocals_low = istft(spec * mask, mask_config, length=padded.shape[1])[:, :low.shape[0]]  # (C, n_low)
    vocals = resample(vocals_low.numpy().T, mask_config.sample_rate, sample_rate)  # (~n, C)
    n = audio.shape[0]
    return np.pad(vocals, ((0, max(0, n - vocals.shape[0])), (0, 0)))[:n]  # (n, C)


def synthesis_config(sample_rate):
    """The STFT the full-band reconstruction uses at the input's rate.

    Windows of about SYNTHESIS_SECONDS (a power of two: 4096 samples at 44.1
    or 48 kHz) with a hop of 1/SYNTHESIS_OVERLAP window: four overlapping
    windows smooth the mask's steps, where the model's STFT (hop 3/4 of the
    window) barely overlaps (two lose a little, eight gain nothing:
    benchmarks/README.md, "Choosing the reconstruction's settings").
    """
    n_fft = 2 ** max(4, round(math.log2(sample_rate * SYNTHESIS_SECONDS)))
    return SignalConfig(sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // SYNTHESIS_OVERLAP)


def full_band_vocals(audio, sample_rate, mask, mask_config, start=0):
    """The vocals rebuilt at the input's own rate, in its whole band: (samples, channels).

    The mask is interpolated onto each channel's STFT at the input's rate
    (synthesis_config) and multiplies it (mixture phase kept). `offset` zeros
    in front put the frames on the whole song's grid (a block gives exactly
    the samples the whole song would); n_fft zeros at the end keep the last
    samples under several windows.
    """
    synthesis = synthesis_config(sample_rate)
    offset = start % synthesis.hop_length
    padded = torch.from_numpy(np.pad(audio.T, ((0, 0), (offset, synthesis.n_fft))))  # (C, offset + n + n_fft)
    frames = 1 + padded.shape[1] // synthesis.hop_length  # of its centred STFT
    mask = interpolate_mask(mask, mask_config, synthesis, frames, offset)  # (F', T')
    vocals = torch.stack([istft_of_masked_stft(channel, mask, synthesis) for channel in padded], dim=1)
    return vocals[offset:offset + audio.shape[0]].numpy()  # (n, C)


def interpolate_mask(mask, mask_config, synthesis, frames, offset=0):
    """The mask read at the bins and frames of the synthesis STFT.

    Linear in time (mask frame t is centred at t * hop / rate s, synthesis
    frame j at (j * hop' - offset) / rate' s) and in frequency up to the
    mask's top bin. Above the model's band the mask has no value of its own:
    each frame takes the mean of its top HIGH_BAND_HZ, so a frame the model
    hears as sung keeps its sibilants and breath with the vocals, and one it
    hears as instrumental leaves its cymbals in the accompaniment.

    The work is done frame by frame ((frames, bins) in memory) and the result
    is its transposed view: the synthesis reads the mask a frame at a time,
    and reading it from a (bins, frames) layout took a third of its time.

    Args:
        mask: (freq_bins, frames) at the STFT `mask_config`.
    Returns:
        (synthesis.freq_bins, frames), a view of a (frames, freq_bins) tensor.
    """
    seconds = (torch.arange(frames, dtype=torch.float64) * synthesis.hop_length - offset) / synthesis.sample_rate
    in_time = _lerp(mask.T, seconds * mask_config.sample_rate / mask_config.hop_length, dim=0)  # (frames, F)
    hz = torch.arange(synthesis.freq_bins, dtype=torch.float64) * synthesis.sample_rate / synthesis.n_fft
    bin_hz = mask_config.sample_rate / mask_config.n_fft  # width of one bin of the mask
    inside = int((hz <= mask_config.sample_rate / 2).sum())
    low = _lerp(in_time, hz[:inside] / bin_hz, dim=1)  # (frames, inside)
    top = in_time[:, round(HIGH_BAND_HZ[0] / bin_hz):round(HIGH_BAND_HZ[1] / bin_hz) + 1].mean(1)  # (frames,)
    high = top[:, None].expand(frames, synthesis.freq_bins - inside)  # (frames, F' - inside)
    return torch.cat([low, high], dim=1).T  # (F', frames)


def _lerp(x, positions, dim):
    """x read at fractional indices along `dim`, linearly interpolated, clamped at both ends."""
    n = x.shape[dim]
    positions = positions.clamp(0, n - 1)
    low = positions.floor().long()
    high = (low + 1).clamp(max=n - 1)
    weight = (positions - low).float()
    shape = [1] * x.dim()
    shape[dim] = -1
    # x's shape, with len(positions) along dim:
    return torch.lerp(x.index_select(dim, low), x.index_select(dim, high), weight.view(shape))


# --------------------------------------------------------------------------
# A whole song, and a long one in blocks
# --------------------------------------------------------------------------

def separate(model, signal_config, audio, sample_rate, options=SeparationOptions()):
    """Vocals and accompaniment of a song.

    Args:
        model, signal_config: from checkpoints.load_model().
        audio: float array (samples,) or (samples, channels), any sample rate.
        options: a SeparationOptions (default: full band, the network
            reading the whole song).
    Returns:
        (vocals, accompaniment), float32, each of the input's shape.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return tuple(part[:, 0] for part in separate(model, signal_config, audio[:, None], sample_rate, options))
    if audio.ndim != 2 or audio.shape[1] > audio.shape[0]:
        raise SeparationError(f"expected audio of shape (samples,) or (samples, channels), got {audio.shape}")
    _, mask = predict_mask(model, signal_config, audio, sample_rate, options.network_input)  # (F, T)
    return reconstruct(audio, sample_rate, mask, signal_config, options)


def plan_blocks(n, sample_rate, signal_config):
    """[(start, end, read_from, read_to)]: output [start, end) comes from the
    separation of the input [read_from, read_to), which adds context margins.

    Block edges fall on multiples of the patch hop (in seconds), where the
    resampler's, the STFT's and the patch tiling's grids of a block coincide
    with the whole song's; so does the network's own grid (its 4 stride-2
    levels see frames in groups of 16, and the hop is 64 frames) when it
    reads a whole block in one pass.
    """
    hop_seconds = _patch_hop(signal_config.patch_frames) * signal_config.hop_length / signal_config.sample_rate  # 6 s
    unit = hop_seconds * sample_rate  # samples
    block = int(unit * max(1, -(-BLOCK_SECONDS * sample_rate // unit)))
    margin = int(unit * max(1, -(-MARGIN_SECONDS * sample_rate // unit)))
    if n <= block + 2 * margin:
        return [(0, n, 0, n)]
    return [(s, min(s + block, n), max(0, s - margin), min(n, s + block + margin))
            for s in range(0, n, block)]


def song_scale(blocks, sample_rate, signal_config):
    """The paper's magnitude scale of a whole song, from its blocks (an iterable of (samples, channels))."""
    peaks = [mix_magnitude(block, sample_rate, signal_config).max() for block in blocks]
    return magnitude_scale(torch.stack(peaks))  # (blocks,): the song's peak is the largest
