"""The signal: the settings of the model's STFT, mono downmix, resampling, STFT / ISTFT, the magnitude scale.

What data.py, separation.py, metrics.py and reports.py compute on arrays;
reading and writing files is audio.py's. Where a hand-written version is
faster than the library's (resample, istft_of_masked_stft), its docstring says
why, tests/test_spectral.py checks it against the library version it stands
for, and benchmarks/README.md ("Fast paths") by how much. Arrays are numpy
`(samples, channels)` float32; spectrograms are torch `(..., freq_bins, frames)`.
Not named signal.py: that would shadow the standard library's module.
"""

import functools
from dataclasses import asdict, dataclass
from math import gcd

import numpy as np
import torch


_WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window}


@dataclass
class SignalConfig:
    """The paper's signal settings; stored in every checkpoint and cache key.

    8192 Hz and a 1024-point FFT give 513 bins up to 4096 Hz; a hop of 768
    makes a 128-frame patch about 12 s of audio.
    """

    sample_rate: int = 8192
    n_fft: int = 1024
    hop_length: int = 768
    patch_frames: int = 128
    window: str = "hann"

    def __post_init__(self):
        if self.window not in _WINDOWS:
            raise ValueError(f"window must be one of {', '.join(_WINDOWS)}, got {self.window!r}")

    @property
    def freq_bins(self):
        return self.n_fft // 2 + 1

    def window_tensor(self, device=None):
        """The analysis and synthesis window, (n_fft,)."""
        return _WINDOWS[self.window](self.n_fft, device=device)

    def to_dict(self):
        return asdict(self)


def to_mono(audio):
    """(samples, channels) -> (samples,): the channel mean, as the paper trains.

    Summed channel by channel: numpy's mean over a short last axis is much
    slower for the same values (benchmarks/README.md, "Fast paths").
    """
    if audio.ndim == 1:
        return audio
    mono = audio[:, 0].astype(np.float32 if audio.dtype == np.float32 else np.float64)
    for channel in range(1, audio.shape[1]):
        mono += audio[:, channel]
    mono /= audio.shape[1]
    return mono


def resample(audio, rate_in, rate_out, block=64):
    """Resample along axis 0 by the rational factor up / down = rate_out / rate_in.

    The result of scipy.signal.resample_poly with its defaults, with which the
    project's features were first made (the same filter, alignment and
    length; tests/test_spectral.py compares them), computed here because
    importing scipy.signal costs seconds at every start of inference.py
    (benchmarks/README.md, "Fast paths").

    Output sample k is sum_i x[i] h(k * down - i * up), h the low-pass of
    `_lowpass`. k + up needs x shifted by down, with the same weights: so
    each run of `block` outputs of a period of `up` is one small matrix
    (`_polyphase_matrices`) applied to windows of x that start `down` apart,
    which is a strided view; one matrix product per run does the song.

    Args:
        audio: numpy (samples,) or (samples, channels).
        block: outputs per matrix product (speed only, not the result).
    Returns:
        float32 numpy array of ceil(samples * up / down) samples, same channels.
    """
    if rate_in == rate_out:
        return audio
    g = gcd(int(rate_in), int(rate_out))
    up, down = int(rate_out) // g, int(rate_in) // g
    audio = np.asarray(audio, dtype=np.float32)
    x = torch.from_numpy(audio[:, None] if audio.ndim == 1 else audio).T  # (C, n), a view
    channels, n = x.shape
    n_out = -(-n * up // down)
    periods = -(-n_out // up)
    runs = _polyphase_matrices(up, down, block)
    front = max(0, -min(first for _, first, _ in runs))  # zeros before x: windows may start before it
    back = max(0, (periods - 1) * down + max(first + m.shape[1] for _, first, m in runs) - n)
    padded = torch.zeros(channels, front + n + back)  # x, channels first, between zeros: the one copy
    padded[:, front:front + n] = x
    out = torch.empty(channels, periods, up)
    for k0, first, matrix in runs:
        windows = padded.as_strided((channels, periods, matrix.shape[1]), (padded.shape[1], down, 1),
                                    front + first)  # (C, periods, width): x[q * down + first + c]
        out[:, :, k0:k0 + matrix.shape[0]] = windows @ matrix.T  # (C, periods, block)
    y = out.reshape(channels, -1)[:, :n_out].T.numpy()  # (n_out, C)
    return y[:, 0] if audio.ndim == 1 else y


@functools.lru_cache(maxsize=8)
def _lowpass(up, down):
    """The anti-aliasing filter of resample, as resample_poly designs it by default.

    A sinc with its cutoff at the slower rate's Nyquist frequency, 10 zero
    crossings on each side, Kaiser window (beta 5), scaled to unit gain at
    0 Hz, then by `up` (the zeros that upsampling puts between samples).
    Returns float32 h of 2 * half + 1 taps, centred on tap `half`, and half.
    """
    rate = max(up, down)
    half = 10 * rate
    m = np.arange(2 * half + 1, dtype=np.float64) - half
    h = np.sinc(m / rate) / rate
    h *= np.i0(5.0 * np.sqrt(1 - (m / half) ** 2.0)) / np.i0(5.0)
    h /= h.sum()
    return h.astype(np.float32) * np.float32(up), half


@functools.lru_cache(maxsize=8)
def _polyphase_matrices(up, down, block):
    """[(k0, first, matrix)]: outputs k0 .. k0 + block - 1 of every period are
    matrix (block, width) times x[first .. first + width - 1] shifted by the period."""
    h, half = _lowpass(up, down)
    runs = []
    for k0 in range(0, up, block):
        k = np.arange(k0, min(k0 + block, up))  # (b,)
        first = -((half - k[0] * down) // up)  # ceil((k0 * down - half) / up): the first input in reach
        last = (k[-1] * down + half) // up
        offsets = k[:, None] * down - np.arange(first, last + 1)[None, :] * up  # (b, width): k * down - i * up
        inside = np.abs(offsets) <= half
        matrix = np.where(inside, h[np.clip(offsets + half, 0, 2 * half)], np.float32(0))
        runs.append((k0, first, torch.from_numpy(matrix)))
    return runs


def stft(waveform, config):
    """Complex STFT with the project's settings.

    Args:
        waveform: tensor (..., samples).
    Returns:
        complex tensor (..., freq_bins, frames); frame t is centred on sample t * hop.
    """
    window = config.window_tensor(device=waveform.device)
    return torch.stft(waveform, config.n_fft, config.hop_length, window=window,
                      center=True, return_complex=True)


def istft(spec, config, length):
    """Inverse of `stft`, trimmed or padded to `length` samples."""
    window = config.window_tensor(device=spec.device)
    return torch.istft(spec, config.n_fft, config.hop_length, window=window,
                       center=True, length=length)


def istft_of_masked_stft(waveform, mask, config, chunk_frames=512):
    """istft(stft(waveform, config) * mask, config), a chunk of frames at a time.

    The same samples (centred frames, the window, divided by the windows'
    summed square; tests/test_spectral.py holds the two side by side) without
    ever holding a whole song's STFT: at 44.1 kHz a 5-minute block's would
    take 240 MB per channel, and allocating that much for every block made
    long songs twice as slow. The hop must divide n_fft: frame j's samples
    are then `overlap` hop-long pieces that land on output rows j, j+1, ...,
    j+overlap-1.

    Most of the time goes to passes over memory, not to the FFTs (less than
    half; benchmarks/README.md, "Fast paths"), so two shortcuts: the window
    is applied while overlap-adding (addcmul_),
    and the summed squared windows, the same on every row but the first and
    last overlap-1, divide out as one row instead of as a whole song's
    envelope.

    Args:
        waveform: (samples,); mask: (freq_bins, frames) over its STFT.
    Returns:
        (samples,).
    """
    n_fft, hop = config.n_fft, config.hop_length
    overlap = n_fft // hop
    window = config.window_tensor()
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


def magnitude_scale(mix_magnitude):
    """The paper's scaling: the factor that maps the mix's largest magnitude to 1.

    Computed once per track from the mix and applied to the mix and the vocals
    alike, in training and in inference. Silence gets factor 1 instead of a
    division by zero.
    """
    peak = float(mix_magnitude.max())
    return 1.0 / peak if peak > 1e-8 else 1.0
