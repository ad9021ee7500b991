"""Separate the vocals of a song with a trained U-Net, and plot mix / mask / vocals.

    python inference.py                              # first test song of the data in use
    python inference.py song.mp3 "other song.flac"   # any audio files
    python inference.py ~/Music/album -r             # every audio file of a folder (-r: and below)
    python inference.py song.wav --format flac --bit-depth 24
    python inference.py --songs "Toy Song test 02"   # songs of the data set, by name
    python inference.py --checkpoint checkpoints/final_model.pth --out-dir results
    python inference.py song.wav --reconstruction lab  # the lab's 8192 Hz reconstruction
    python inference.py song.wav --wiener 1            # + the multichannel Wiener post-filter

For each song, writes to <out-dir>/<song>/ (default outputs/<song>/; two inputs
with the same name, song.wav and song.mp3, go to "song" and "song (mp3)"):
    vocals.wav, accompaniment.wav   the input's length, channels and sample rate;
                                    accompaniment = mix - vocals, so the two sum back to
                                    it (to one step of 16 bits; --bit-depth 32f: exactly,
                                    even where a loud input goes past full scale)
    separation.png                  mix, predicted mask and estimated vocals spectrograms

From Python (a notebook), with the model loaded once for many songs:

    from inference import load_model, separate
    model, signal_config = load_model("checkpoints/best_model.pth")
    vocals, accompaniment = separate(model, signal_config, audio, sample_rate)

How it works: the mono mix is resampled to 8192 Hz and transformed with the
training STFT, and the network predicts a mask from it in one pass. By
default (full band) that mask is interpolated onto each channel's STFT at the
input's own rate (93 ms windows, 4 overlapping) and multiplies it there, so
the mix's phase, its rate and its whole band are kept; above 4096 Hz, where
the model sees nothing, each frame takes the mean of the mask's 3-4 kHz band.
The lab's reconstruction (--reconstruction lab) instead applies the mask to
each channel's STFT at 8192 Hz and resamples the vocals back: they stop at
4096 Hz. Either way accompaniment = mix - vocals. benchmarks/README.md has
the measured difference (bench_quality.py).
"""

import cli

if __name__ == "__main__":  # Ctrl-C while the imports below load ends in one line too
    cli.exit_quietly_while_starting()

# The imports come after the handler on purpose: they are the slow part it covers.
import argparse
import contextlib
import gc
import math
import os
import re
import sys

import numpy as np
import soundfile as sf
import torch

from audio import (AudioError, SignalConfig, istft, magnitude_scale, open_audio, require_file, resample,
                   soundfile_name, stft, to_mono)
from checkpoints import load_model
from cli import (HelpFormatter, UserError, add_root_flag, add_song_flags, bounded_number, find_song,
                 pick_device, progress_bar)
from files import atomic_path

DEFAULT_CHECKPOINT = os.path.join("checkpoints", "best_model.pth")
# How the network reads a song (--network-input). "whole": the whole
# spectrogram (of a block, below) in one pass; the network is convolutional,
# so every frame is computed once and sees its real neighbours, with no patch
# edges. "patches": the training size, 128 frames, overlapping by OVERLAP and
# blended with a smooth window, so no frame relies on the edge of a single
# patch; twice the work. benchmarks/README.md has both measured.
NETWORK_INPUT = "whole"
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
WIENER_EPS = 1e-10  # regularises the Wiener filter's matrices where the mix is silent


class InferenceError(UserError):
    """A problem with what was asked to separate."""


# --------------------------------------------------------------------------
# Separation of an audio array
# --------------------------------------------------------------------------

def patch_hop(patch_frames):
    """Frames between the starts of two patches (OVERLAP of them shared): 64 for 128-frame patches.

    The one place it is derived: compute_mask tiles with it, and plan_blocks
    puts block edges on its multiples, which keeps block-wise == whole.
    """
    return max(1, round(patch_frames * (1 - OVERLAP)))


@torch.inference_mode()
def compute_mask(model, magnitude, patch_frames, network_input=NETWORK_INPUT, batch_size=8):
    """The network's mask for a whole scaled magnitude spectrogram.

    Args:
        magnitude: tensor (freq_bins, frames), already scaled.
    Returns:
        tensor (freq_bins, frames) in [0, 1]. With network_input "whole", one
        pass over all the frames (at least patch_frames: a shorter song is
        padded with silence, as in training); with "patches", overlapping
        patches blended with a Hann-shaped weight (strictly positive, so
        every frame is covered).
    """
    device = next(model.parameters()).device
    bins, frames = magnitude.shape
    padded = max(frames, patch_frames)
    if network_input == "whole":
        x = torch.nn.functional.pad(magnitude, (0, padded - frames))  # (F, T')
        return model(x[None].to(device)).float().cpu()[0, :, :frames]  # (F, T)
    hop = patch_hop(patch_frames)
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


def mix_magnitude(audio, sample_rate, signal_config):
    """The network's input for a song: |STFT| of its mono mix at the model's rate.

    Computed as training computes it (channel mean, resample, STFT), with
    n_fft zeros appended so that the last samples lie under several frames
    (see `analyse`). Returns a tensor (freq_bins, frames).
    """
    mono = resample(to_mono(audio), sample_rate, signal_config.sample_rate)  # (n_low,)
    padded = np.pad(mono, (0, signal_config.n_fft))  # (n_low + n_fft,)
    return stft(torch.from_numpy(padded), signal_config).abs()  # (F, T)


def analyse(audio, sample_rate, signal_config):
    """Every channel at the model's rate and its complex STFT (the lab's reconstruction).

    The audio is padded with n_fft zeros at the end first: with a hop of 3/4
    of the window, the last samples would otherwise lie under the tail of a
    single window, and the ISTFT of a masked spectrogram would divide them by
    almost nothing.

    Args:
        audio: float32 (samples, channels).
    Returns:
        (complex tensor (channels, freq_bins, frames), samples at the model's rate).
    """
    low = resample(audio, sample_rate, signal_config.sample_rate)  # (n_low, C)
    padded = np.pad(low.T, ((0, 0), (0, signal_config.n_fft)))  # (C, n_low + n_fft)
    return stft(torch.from_numpy(padded), signal_config), low.shape[0]


def lab_vocals(audio, sample_rate, mask, signal_config):
    """The lab's reconstruction: the vocals rebuilt at the model's rate, then resampled.

    The mask multiplies each channel's complex STFT at 8192 Hz (mixture
    phase), the ISTFT gives the vocals at 8192 Hz, and they are resampled to
    the input's rate: they stop at 4096 Hz, and the hop of 3/4 of the window
    lets every jump of the mask be heard as an edge. Returns (samples, channels).
    """
    spec, n_low = analyse(audio, sample_rate, signal_config)  # (C, F, T)
    vocals_low = istft(spec * mask, signal_config, length=n_low + signal_config.n_fft)[:, :n_low]  # (C, n_low)
    vocals = resample(vocals_low.numpy().T, signal_config.sample_rate, sample_rate)  # (~n, C)
    n = audio.shape[0]
    return np.pad(vocals, ((0, max(0, n - vocals.shape[0])), (0, 0)))[:n]  # (n, C)


def synthesis_config(sample_rate):
    """The STFT the full-band reconstruction uses at the input's rate.

    Windows of about SYNTHESIS_SECONDS (a power of two: 4096 samples at 44.1
    or 48 kHz) with a hop of 1/SYNTHESIS_OVERLAP window: four overlapping
    windows smooth the mask's steps, where the model's STFT (hop 3/4 of the
    window) barely overlaps; two lose 0.06-0.09 dB, eight gain nothing.
    """
    n_fft = 2 ** max(4, round(math.log2(sample_rate * SYNTHESIS_SECONDS)))
    return SignalConfig(sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // SYNTHESIS_OVERLAP)


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


def interpolate_mask(mask, signal_config, synthesis, frames, offset=0):
    """The model's mask read at the bins and frames of the synthesis STFT.

    Linear in time (model frame t is centred at t * hop / 8192 s, synthesis
    frame j at (j * hop' - offset) / rate s) and in frequency up to 4096 Hz.
    Above the model's band the mask has no value of its own: each frame takes
    the mean of its top HIGH_BAND_HZ, so a frame the model hears as sung keeps
    its sibilants and breath with the vocals, and one it hears as instrumental
    leaves its cymbals in the accompaniment.

    The work is done frame by frame ((frames, bins) in memory) and the result
    is its transposed view: masked_synthesis reads the mask a frame at a time,
    and reading it from a (bins, frames) layout took a third of its time.

    Args:
        mask: (freq_bins, frames) at the model's STFT.
    Returns:
        (synthesis.freq_bins, frames), a view of a (frames, freq_bins) tensor.
    """
    seconds = (torch.arange(frames, dtype=torch.float64) * synthesis.hop_length - offset) / synthesis.sample_rate
    in_time = _lerp(mask.T, seconds * signal_config.sample_rate / signal_config.hop_length, dim=0)  # (frames, F)
    hz = torch.arange(synthesis.freq_bins, dtype=torch.float64) * synthesis.sample_rate / synthesis.n_fft
    model_hz = signal_config.sample_rate / signal_config.n_fft  # width of one model bin
    inside = int((hz <= signal_config.sample_rate / 2).sum())
    low = _lerp(in_time, hz[:inside] / model_hz, dim=1)  # (frames, inside)
    top = in_time[:, round(HIGH_BAND_HZ[0] / model_hz):round(HIGH_BAND_HZ[1] / model_hz) + 1].mean(1)  # (frames,)
    high = top[:, None].expand(frames, synthesis.freq_bins - inside)  # (frames, F' - inside)
    return torch.cat([low, high], dim=1).T  # (F', frames)


def full_band_vocals(audio, sample_rate, mask, signal_config, start=0, wiener_iterations=0):
    """The vocals rebuilt at the input's own rate, in its whole band.

    The model's mask is interpolated onto each channel's STFT at the input's
    rate (`synthesis_config`) and multiplies it (mixture phase kept), or
    feeds the multichannel Wiener filter. `start` is where `audio` begins in
    the whole song: the frames are placed on the whole song's grid, so that a
    block gives exactly the samples the whole song would. Returns (samples, channels).
    """
    synthesis = synthesis_config(sample_rate)
    offset = start % synthesis.hop_length
    padded = pad_for_synthesis(audio, synthesis, offset)  # (C, offset + n + n_fft)
    frames = 1 + padded.shape[1] // synthesis.hop_length  # of its centred STFT
    mask = interpolate_mask(mask, signal_config, synthesis, frames, offset)  # (F', T')
    return apply_mask(padded, mask, synthesis, wiener_iterations)[offset:offset + audio.shape[0]].numpy()


def pad_for_synthesis(audio, synthesis, offset=0):
    """(samples, channels) -> tensor (channels, offset + samples + n_fft), ready for apply_mask.

    `offset` zeros in front put the frames on a longer song's grid; n_fft zeros
    at the end keep the last samples under several windows (see `analyse`).
    """
    return torch.from_numpy(np.pad(audio.T, ((0, 0), (offset, synthesis.n_fft))))


def apply_mask(padded, mask, synthesis, wiener_iterations=0):
    """Vocals (samples, channels) from a mask (freq_bins, frames) over the `synthesis` STFT of each channel.

    `padded` is (channels, samples), as pad_for_synthesis gives it; the
    result comes out in the layout of the audio arrays, so that no later
    step has to transpose a whole song again.
    """
    if wiener_iterations:  # the Wiener filter needs every frame at once
        spec = stft(padded, synthesis)  # (C, F', T')
        return istft(wiener_vocals(spec, mask, wiener_iterations), synthesis, padded.shape[1]).T  # (samples, C)
    return torch.stack([masked_synthesis(channel, mask, synthesis) for channel in padded], dim=1)  # (samples, C)


def masked_synthesis(waveform, mask, synthesis, chunk_frames=512):
    """istft(stft(waveform) * mask) with the `synthesis` settings, a chunk of frames at a time.

    The same samples as audio.stft / audio.istft (centred frames, Hann window,
    divided by the windows' summed square), without ever holding a whole
    song's STFT: at 44.1 kHz a 5-minute block's would take 240 MB per channel,
    and allocating that much for every block made long songs twice as slow.
    The hop must divide n_fft: frame j's samples are then `overlap` hop-long
    pieces that land on output rows j, j+1, ..., j+overlap-1.

    Most of the time goes to passes over memory, not to the FFTs (0.09 s of
    0.22 s per channel of a 3-minute song, AVX2; 0.28-0.30 s before these
    two shortcuts): the synthesis window is applied while overlap-adding
    (addcmul_), and the summed squared windows, the same on every row but
    the first and last overlap-1, divide out as one row instead of as a
    whole song's envelope.

    Args:
        waveform: (samples,); mask: (freq_bins, frames) over its STFT.
    Returns:
        (samples,).
    """
    n_fft, hop = synthesis.n_fft, synthesis.hop_length
    overlap = n_fft // hop
    window = synthesis.window_tensor()
    window_pieces = window.view(overlap, hop)  # the window in hop-long pieces
    centred = torch.nn.functional.pad(waveform[None, None], (n_fft // 2, n_fft // 2), mode="reflect")[0, 0]
    frames = centred.unfold(0, n_fft, hop)  # (T', n_fft): a view, nothing copied
    total = frames.shape[0]
    out = torch.zeros(total + overlap - 1, hop)  # the overlap-added samples, one hop per row
    for start in range(0, total, chunk_frames):
        spec = torch.fft.rfft(frames[start:start + chunk_frames] * window)  # (t, F')
        spec.mul_(mask[:, start:start + chunk_frames].T)  # (t, F'), in place; contiguous from interpolate_mask
        pieces = torch.fft.irfft(spec, n=n_fft).view(-1, overlap, hop)  # (t, overlap, hop), not yet windowed
        for i in range(overlap):
            out[start + i:start + i + pieces.shape[0]].addcmul_(pieces[:, i], window_pieces[i])
    squares = window_pieces.square()  # (overlap, hop)
    out[overlap - 1:total] /= squares.sum(0)  # rows under all `overlap` windows
    for row in set(range(overlap - 1)) | set(range(total, total + overlap - 1)):  # the first and last: fewer
        out[row] /= squares[max(0, row - total + 1):min(overlap - 1, row) + 1].sum(0).clamp(min=1e-11)
    samples = out.flatten()  # (centred length,)
    return samples[n_fft // 2:n_fft // 2 + waveform.shape[0]]


def wiener_vocals(mix_spec, mask, iterations=1, chunk_frames=1024):
    """The vocals' STFT refined by a multichannel Wiener filter (EM).

    The method of open-unmix and Spleeter (Nugraha, Liutkus and Vincent
    2016): two sources, vocals and accompaniment, each modelled by a power
    spectral density v_j(f, t) and a spatial covariance R_j(f). Starting from
    the mask's estimates (mask * X and (1 - mask) * X), each iteration fits
    v_j and R_j to the current estimates and re-estimates them as
    v_j R_j (sum_k v_k R_k)^-1 X. Only R_j spans the whole song, so the work
    goes chunk by chunk and memory stays at one chunk. Channel axes come
    first, so every operation runs over whole (freq_bins, frames) slabs.

    Args:
        mix_spec: complex (channels, freq_bins, frames), the mixture's STFT.
        mask: (freq_bins, frames), the vocals' mask on that STFT.
    Returns:
        complex (channels, freq_bins, frames), the vocals' STFT.
    """
    frames = mix_spec.shape[-1]
    chunks = [slice(i, i + chunk_frames) for i in range(0, frames, chunk_frames)]
    covariances = []  # R_j of each iteration, (2, C, C, F)
    for _ in range(iterations):
        outer, power = 0, 0
        for chunk in chunks:
            estimates = _wiener_estimates(mix_spec[:, :, chunk], mask[:, chunk], covariances)  # (2, C, F, t)
            outer = outer + torch.einsum("jcft,jdft->jcdf", estimates, estimates.conj())  # (2, C, C, F)
            power = power + _power(estimates).mean(1).sum(-1)  # (2, F)
        covariances.append(outer / power.clamp(min=WIENER_EPS)[:, None, None])  # (2, C, C, F)
    vocals = torch.empty_like(mix_spec)
    for chunk in chunks:
        vocals[:, :, chunk] = _wiener_estimates(mix_spec[:, :, chunk], mask[:, chunk], covariances)[0]
    return vocals


def _wiener_estimates(mix_spec, mask, covariances):
    """Both sources' STFTs (2, C, F, t) after one Wiener filter per fitted covariance."""
    estimates = torch.stack([mask * mix_spec, (1 - mask) * mix_spec])  # (2, C, F, t)
    channels = mix_spec.shape[0]
    eye = torch.eye(channels)[:, :, None, None]  # (C, C, 1, 1)
    for covariance in covariances:
        psd = _power(estimates).mean(1)  # (2, F, t): v_j, the sources' power
        source_cov = psd[:, None, None] * covariance[..., None]  # (2, C, C, F, t): v_j R_j
        mix_cov = source_cov.sum(0) + WIENER_EPS * eye  # (C, C, F, t)
        whitened = (_inverse(mix_cov) * mix_spec[None]).sum(1)  # (C, F, t): (sum_k v_k R_k)^-1 X
        estimates = (source_cov * whitened[None, None]).sum(2)  # (2, C, F, t)
    return estimates


def _power(spec):
    """|spec|^2 of a complex tensor, without the square root of abs()."""
    return spec.real.square() + spec.imag.square()


def _inverse(matrices):
    """Inverse of a batch of small matrices (C, C, ...); closed forms for C = 1, 2."""
    size = matrices.shape[0]
    if size == 1:
        return 1 / matrices
    if size == 2:
        (a, b), (c, d) = matrices
        return torch.stack([torch.stack([d, -b]), torch.stack([-c, a])]) / (a * d - b * c)  # (2, 2, ...)
    return torch.linalg.inv(matrices.movedim((0, 1), (-2, -1))).movedim((-2, -1), (0, 1))


def _as_2d(audio):
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return audio[:, None], True
    if audio.ndim != 2 or audio.shape[1] > audio.shape[0]:
        raise InferenceError(f"expected audio of shape (samples,) or (samples, channels), got {audio.shape}")
    return audio, False


def reconstruct(audio, sample_rate, mask, signal_config, reconstruction="full", wiener_iterations=0, start=0):
    """(vocals, accompaniment) of `audio` (samples, channels) from a mask at the model's STFT.

    The accompaniment is the input minus the vocals, so the two sum back to it.
    """
    if reconstruction == "lab":
        if wiener_iterations:
            raise InferenceError("the Wiener post-filter works on the full-band reconstruction only")
        vocals = lab_vocals(audio, sample_rate, mask, signal_config)
    else:
        vocals = full_band_vocals(audio, sample_rate, mask, signal_config, start, wiener_iterations)
    vocals = np.ascontiguousarray(vocals, dtype=np.float32)
    return vocals, audio - vocals


def separate(model, signal_config, audio, sample_rate, scale=None, details=False,
             reconstruction="full", wiener_iterations=0, start=0, network_input=NETWORK_INPUT):
    """Vocals and accompaniment of a song.

    Args:
        model, signal_config: from load_model().
        audio: float array (samples,) or (samples, channels), any sample rate.
        scale: magnitude scale factor; None computes the paper's (1 / the mix's
            largest magnitude), which is what a whole song needs. Block-wise
            separation passes the whole song's factor.
        details: also return a dict with the mono mix magnitude, the mask
            (both (freq_bins, frames) at the model's rate) and the scale.
        reconstruction: "full" (the mask applied at the input's rate, full
            band) or "lab" (the lab's: rebuilt at 8192 Hz, vocals below 4096 Hz).
        wiener_iterations: Wiener post-filter iterations (0: none).
        start: where `audio` begins in a longer song, in samples (block-wise separation).
        network_input: "whole" (one pass over the song) or "patches" (see NETWORK_INPUT).
    Returns:
        (vocals, accompaniment), float32, each of the input's shape.
    """
    x, was_1d = _as_2d(audio)
    if x.shape[0] == 0:
        raise InferenceError("the audio is empty")
    if not np.isfinite(x).all():
        raise InferenceError("the audio holds NaN or infinite samples")
    magnitude = mix_magnitude(x, sample_rate, signal_config)  # (F, T)
    if scale is None:
        scale = magnitude_scale(magnitude)
    mask = compute_mask(model, magnitude * scale, signal_config.patch_frames, network_input)  # (F, T)
    vocals, accompaniment = reconstruct(x, sample_rate, mask, signal_config, reconstruction, wiener_iterations, start)
    if was_1d:
        vocals, accompaniment = vocals[:, 0], accompaniment[:, 0]
    if details:
        return vocals, accompaniment, {"mix": magnitude, "mask": mask, "scale": scale}
    return vocals, accompaniment


# --------------------------------------------------------------------------
# Separation of a file, block by block
# --------------------------------------------------------------------------

def plan_blocks(n, sample_rate, signal_config):
    """[(start, end, read_from, read_to)]: output [start, end) comes from the
    separation of the input [read_from, read_to), which adds context margins.

    Block edges fall on multiples of the patch hop (in seconds), where the
    resampler's, the STFT's and the patch tiling's grids of a block coincide
    with the whole song's; so does the network's own grid (its 4 stride-2
    levels see frames in groups of 16, and the hop is 64 frames) when it
    reads a whole block in one pass.
    """
    hop_seconds = patch_hop(signal_config.patch_frames) * signal_config.hop_length / signal_config.sample_rate  # 6 s
    unit = hop_seconds * sample_rate  # samples
    block = int(unit * max(1, -(-BLOCK_SECONDS * sample_rate // unit)))
    margin = int(unit * max(1, -(-MARGIN_SECONDS * sample_rate // unit)))
    if n <= block + 2 * margin:
        return [(0, n, 0, n)]
    return [(s, min(s + block, n), max(0, s - margin), min(n, s + block + margin))
            for s in range(0, n, block)]


def read_block(f, start, stop):
    """Samples [start, stop) of an open soundfile.SoundFile, float32 (samples, channels).

    16-bit files (most WAVs and FLACs) are read as integers and scaled here,
    to the same values: libsndfile's own conversion to float took 0.08 s of
    the 3-minute stereo song's read, the integers and torch's 2-thread
    scaling 0.035 s (AVX2).
    """
    f.seek(start)
    if f.subtype == "PCM_16":
        return torch.from_numpy(f.read(stop - start, dtype="int16", always_2d=True)).float().div_(32768).numpy()
    return f.read(stop - start, dtype="float32", always_2d=True)


def song_scale(f, blocks, signal_config):
    """The paper's scale for the whole song, found block by block (first pass)."""
    peaks = [mix_magnitude(read_block(f, lo, hi), f.samplerate, signal_config).max() for _, _, lo, hi in blocks]
    return magnitude_scale(torch.stack(peaks))  # (blocks,): the song's peak is the largest


# --bit-depth: soundfile's subtype for each, and its integer bits (None: float).
SUBTYPES = {"16": ("PCM_16", 16), "24": ("PCM_24", 24), "32f": ("FLOAT", None)}


def separate_file(model, signal_config, path, out_dir, plot=True, show=False, quiet=False,
                  reconstruction="full", wiener_iterations=0, audio_format="wav", bit_depth="16",
                  network_input=NETWORK_INPUT):
    """Separate one audio file into out_dir/{vocals,accompaniment}.<wav|flac> (+ separation.png).

    Outputs appear only once complete: a failure or Ctrl-C leaves older files
    in place and no new folder behind. `reconstruction`, `wiener_iterations`
    and `network_input` are separate()'s; `bit_depth` is "16", "24" or "32f"
    (float, WAV only: it never clips, so the two outputs always sum back to
    the input). Returns (files written, samples clipped to full scale).
    """
    paths = [os.path.join(out_dir, f"{name}.{audio_format}") for name in ("vocals", "accompaniment")]
    subtype, bits = SUBTYPES[bit_depth]
    top_new = None  # the outermost folder this call creates, removed again if it fails
    folder = os.path.abspath(out_dir)
    while not os.path.exists(folder):
        top_new, folder = folder, os.path.dirname(folder)
    try:
        with open_audio(path) as f, contextlib.ExitStack() as outputs:
            rate, channels, n = f.samplerate, f.channels, f.frames
            if n <= 0:
                raise AudioError(f"{path} holds no audio samples")
            try:
                os.makedirs(out_dir, exist_ok=True)
                # Each output is written under a temporary name: leaving `outputs` closes it and
                # renames it into place, or deletes it if anything failed.
                writers = [outputs.enter_context(sf.SoundFile(
                    soundfile_name(outputs.enter_context(atomic_path(p))), "w", rate, channels,
                    subtype=subtype, format=audio_format.upper())) for p in paths]
            except OSError as err:
                raise InferenceError(f"cannot write to {out_dir} ({err.strerror}): pick another --out-dir")
            first, blocks, clipped = _separate_blocks(model, signal_config, path, f, writers, quiet, bits,
                                                      reconstruction=reconstruction,
                                                      wiener_iterations=wiener_iterations,
                                                      network_input=network_input)
            written = list(paths)
            if plot:  # inside `outputs` too: the song's files appear together, or none of them
                # A name that is not valid UTF-8 keeps its stray bytes as surrogates, which no font can draw.
                title = os.path.basename(out_dir.rstrip(os.sep)).encode("utf-8", "surrogateescape").decode(
                    "utf-8", "replace")
                if len(blocks) > 1:
                    title += f" (first {blocks[0][1] / rate / 60:.0f} min)"
                figure_path = os.path.join(out_dir, "separation.png")
                plot_separation(first["mix"], first["mask"], signal_config, title,
                                outputs.enter_context(atomic_path(figure_path)), show)
                written.append(figure_path)
    except BaseException:
        remove_empty_folders(os.path.abspath(out_dir), top_new)
        raise
    return written, clipped


def quantize(audio, bits):
    """Float audio as `bits`-bit integers, rounded to the nearest step.

    Done here rather than by libsndfile, which scales floats by 2^(bits-1) - 1
    on writing and by 2^(bits-1) on reading: a file written from the sum of
    vocals and accompaniment would then drift by up to 2 steps from the input.
    Each output is rounded once here, so the two sum back within one step.
    16 bits go out as int16, which libsndfile copies as they are; 24 bits as
    int32, whose top 24 bits it writes. In torch rather than numpy: its
    element-wise passes use every core (the two outputs of a 3-minute stereo
    song: 0.10-0.12 s against 0.24-0.30 s, in turns, 2 AVX2 cores).
    Returns (the integer array, how many samples went past full scale).
    """
    top = 2.0 ** (bits - 1)  # float32 holds every integer up to 2^24 exactly
    steps = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).mul(top).round_()
    over = 0
    low, high = torch.aminmax(steps) if steps.numel() else (0, 0)
    if high > top - 1 or low < -top:  # rare: count only then
        over = int(((steps > top - 1) | (steps < -top)).sum())
        steps.clamp_(-top, top - 1)
    if bits == 16:
        return steps.to(torch.int16).numpy(), over
    return steps.to(torch.int32).bitwise_left_shift_(32 - bits).numpy(), over


def remove_empty_folders(folder, top):
    """Remove `folder` and its parents up to `top` (None: none) while they are empty."""
    while top and os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)
        if folder == top:
            break
        folder = os.path.dirname(folder)


def _separate_blocks(model, signal_config, path, f, writers, quiet, bits, **options):
    """separate_file's work once the input and the outputs are open, block by block.

    `options` are separate()'s reconstruction, wiener_iterations and network_input.

    Returns (the first block's separate() details, the blocks, samples clipped
    to full scale: the integer formats hold [-1, 1), float holds anything).
    """
    rate, n = f.samplerate, f.frames
    blocks = plan_blocks(n, rate, signal_config)
    scale = song_scale(f, blocks, signal_config) if len(blocks) > 1 else None
    first, clipped = None, 0
    for start, end, lo, hi in progress_bar(blocks, quiet or len(blocks) == 1, desc=os.path.basename(path),
                                           unit="block"):
        chunk = read_block(f, lo, hi)
        if chunk.shape[0] != hi - lo:
            raise AudioError(f"{path} ends before its header says (truncated file?)")
        vocals, accompaniment, info = separate(model, signal_config, chunk, rate, scale, details=True, start=lo,
                                               **options)
        first = first or info
        for writer, part in zip(writers, (vocals, accompaniment)):
            part = part[start - lo:end - lo]
            if bits:
                part, over = quantize(part, bits)
                clipped += over
            writer.write(part)
    return first, blocks, clipped


# --------------------------------------------------------------------------
# The figure
# --------------------------------------------------------------------------

def plot_separation(mix, mask, signal_config, title, path=None, show=False):
    """Three stacked spectrograms at the model's rate: mix, predicted mask, estimated vocals.

    Returns the matplotlib figure; saves it atomically to `path` if given.
    """
    from figures import spectrogram_figure

    panels = [("Mix", mix, "magnitude"), ("Predicted vocals mask", mask, "mask"),
              ("Estimated vocals (mask x mix)", mask * mix, "magnitude")]
    seconds = mix.shape[-1] * signal_config.hop_length / signal_config.sample_rate
    fig = spectrogram_figure(mix, panels, seconds, signal_config.sample_rate / 2, title=title, interactive=show)
    if path:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    if show:
        import matplotlib.pyplot as plt
        plt.show()
    return fig


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def song_name(path):
    name = os.path.basename(path)
    if name in ("mixture.wav", "mixture.flac"):  # a MUSDB18-HQ song folder
        name = os.path.basename(os.path.dirname(os.path.abspath(path)))
    name = re.sub(r"(\.stem)?\.[A-Za-z0-9]+$", "", name)
    return name or "song"


def get_args(argv=None):
    p = argparse.ArgumentParser(
        description="Separate the vocals of songs with a trained U-Net and plot mix / mask / vocals.",
        formatter_class=HelpFormatter)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="audio files or folders of them to separate (WAV, FLAC, OGG, MP3, MP4, .stem.mp4, ...); "
                        "none: the first test song of the data in use")
    p.add_argument("--input", action="append", default=None, metavar="FILE",
                   help="another audio file or folder to separate (may be repeated)")
    p.add_argument("--recursive", "-r", action="store_true", help="also separate the files in subfolders")
    add_song_flags(p)
    add_root_flag(p)
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="model written by train.py")
    p.add_argument("--out-dir", default="outputs", help="each song goes to OUT_DIR/<song name>/")
    p.add_argument("--format", choices=("wav", "flac"), default="wav", dest="audio_format",
                   help="file format of vocals and accompaniment")
    p.add_argument("--bit-depth", choices=tuple(SUBTYPES), default="16",
                   help="16 or 24-bit integers, or 32f: 32-bit float (WAV only), which never clips, so "
                        "vocals + accompaniment sum back to a loud input too")
    add_reconstruction_flags(p)
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    p.add_argument("--no-plot", action="store_true", help="skip the figure (faster, for batch use)")
    p.add_argument("--show", action="store_true", help="also open the figure in a window")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    args = p.parse_args(argv)
    if args.no_plot and args.show:
        p.error("--show and --no-plot contradict each other")
    if args.audio_format == "flac" and args.bit_depth == "32f":
        p.error("FLAC holds 16 or 24-bit integers only: use --bit-depth 24, or --format wav for 32f")
    check_reconstruction_flags(p, args)
    return args


def check_reconstruction_flags(parser, args):
    """Refuse --wiener with --reconstruction lab, as a usage error (exit 2)."""
    if args.reconstruction == "lab" and args.wiener:
        parser.error("--wiener works on the full-band reconstruction only: drop it or --reconstruction lab")


def add_reconstruction_flags(parser):
    """--reconstruction, --wiener and --network-input, shared by inference.py and evaluate.py."""
    parser.add_argument("--reconstruction", choices=("full", "lab"), default="full",
                        help="full: the mask applied at the input's own rate, vocals in the whole band; "
                             "lab: the lab's reconstruction at 8192 Hz, vocals stop at 4096 Hz")
    parser.add_argument("--wiener", type=bounded_number(int, 0, 10), default=0, metavar="N",
                        help="iterations of the multichannel Wiener post-filter (0: off; it lowered SDR "
                             "on music unlike the training songs, see benchmarks/README.md)")
    parser.add_argument("--network-input", choices=("whole", "patches"), default=NETWORK_INPUT,
                        help="whole: the network reads the song (up to 5-minute blocks) in one pass; patches: "
                             "in the training's 128-frame patches, overlapping by half (twice the work)")


AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".aif", ".aiff",
                    ".wma", ".webm", ".mka")


def audio_files_in(folder, recursive):
    """The audio files in `folder` (and its subfolders if `recursive`), by extension, sorted."""
    found = []
    for parent, subfolders, names in os.walk(folder):
        subfolders.sort()
        found += [os.path.join(parent, name) for name in sorted(names)
                  if name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith(".")]
        if not recursive:
            break
    return found


def songs_to_separate(args):
    """[(name, path)] from the files and folders, --input, --songs, or the first test song."""
    files = args.files + (args.input or [])
    swallowed = [name for name in args.songs or [] if os.path.exists(name)]
    if swallowed:  # `--songs NAME song.wav`: --songs takes every word after it
        raise InferenceError(f"--songs took {swallowed[0]!r} as a song name: give audio files or --songs, not "
                             "both (files go before any flag)")
    if files and args.songs:
        raise InferenceError("give either audio files or --songs, not both")
    if files:
        paths = []
        for path in files:
            if os.path.isdir(path):
                found = audio_files_in(path, args.recursive)
                if not found:
                    raise InferenceError(f"{path} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})"
                                         + ("" if args.recursive else "; add --recursive to look in its subfolders"))
                paths += found
            else:  # checked now, before any song is separated, not after the ones before it
                paths.append(require_file(path))
        return distinct_names(paths)
    from data import find_tracks

    root, tracks = find_tracks(args.root, quiet=args.quiet)
    if not tracks:
        raise InferenceError(f"{root} has no songs to separate")
    if args.songs is None:
        return [(tracks[0].name, tracks[0].path)]  # test songs come first
    chosen = [find_song(tracks, name, root) for name in args.songs]
    return [(track.name, track.path) for track in chosen]


def distinct_names(paths):
    """[(output folder name, path)]: the song's name, made unique where two inputs share one.

    song.wav and song.mp3 would both write outputs/song/, the second over the
    first: the second gets "song (mp3)", and a third of the same name and
    type "song (2)". The same file given twice is separated once.
    """
    named, taken = [], set()
    seen = set()
    for path in paths:
        if os.path.realpath(path) in seen:
            continue
        seen.add(os.path.realpath(path))
        name = song_name(path)
        if name.lower() in taken:  # case-insensitive: macOS and Windows folders are
            extension = os.path.splitext(path)[1].lstrip(".").lower()
            candidates = [f"{name} ({extension})"] if extension else []
            candidates += [f"{name} ({i})" for i in range(2, len(paths) + 2)]
            name = next(c for c in candidates if c.lower() not in taken)
        taken.add(name.lower())
        named.append((name, path))
    return named


def main(argv=None):
    args = get_args(argv)
    sys.stdout.reconfigure(errors="backslashreplace")  # file names that are not valid UTF-8
    done, current = 0, None
    try:
        device = pick_device(args.cpu)
        model, signal_config = load_model(args.checkpoint, device)
        songs = songs_to_separate(args)
        for done, (name, path) in enumerate(songs):
            current = path
            out_dir = os.path.join(args.out_dir, name)
            if not args.quiet and name != song_name(path):
                print(f"{path} shares its name with another input: writing it to {out_dir}")
            written, clipped = separate_file(model, signal_config, path, out_dir, plot=not args.no_plot,
                                             show=args.show, quiet=args.quiet, reconstruction=args.reconstruction,
                                             wiener_iterations=args.wiener, audio_format=args.audio_format,
                                             bit_depth=args.bit_depth, network_input=args.network_input)
            if not args.quiet:
                print(f"{path}: wrote " + ", ".join(written))
            if clipped:
                print(f"warning: {clipped} samples of {out_dir} went past full scale and were clipped, so "
                      "vocals + accompaniment no longer sum back to the input there; --bit-depth 32f keeps them")
    except UserError as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt:
        what = f"{current} was not written" if current else "nothing was written"
        before = "" if not done else "; the song before it is complete" if done == 1 else \
            f"; the {done} songs before it are complete"
        print(f"Interrupted: {what}{before}.", file=sys.stderr)
        sys.exit(130)
    if not args.quiet:
        print("Listen to vocals and accompaniment with any audio player.")


if __name__ == "__main__":
    cli.interrupts_raise_keyboard_interrupt()
    # The imports leave some 160,000 objects (nearly all torch's) that live until the end: frozen,
    # the garbage collector skips them, in its passes during the run and at exit (0.75 s -> 0.3 s
    # after `import torch`). The cold command on a 3-minute song: 6.7-7.5 s -> 5.3-6.6 s (4 runs
    # each, in turns, AVX2).
    gc.freeze()
    main()
