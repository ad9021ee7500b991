"""Audio files (audio.py) on generated files: reading (ffmpeg's paths, headers that lie, damaged files, a
temporary folder that fails), the 16-bit fast read beside libsndfile's, quantize, and the one writer."""

import errno
import os
import re
import shutil
import tempfile

import numpy as np
import pytest
import soundfile as sf

from audio import (AudioError, TemporaryFolderError, open_audio, probe_audio, quantize, read_audio, read_block,
                   write_audio)
from conftest import ffmpeg, joined_files, noisy_song
from files import DiskFullError
from songs import find_songs


def test_write_then_read(tmp_path):
    x = (0.5 * np.sin(np.linspace(0, 100, 8000))[:, None] * [1, -1]).astype(np.float32)
    path = tmp_path / "dir with spaces é"
    path.mkdir()
    write_audio(path / "out.wav", x, 8000)
    y, rate = read_audio(path / "out.wav")
    assert rate == 8000 and y.shape == (8000, 2)
    assert np.max(np.abs(x - y)) < 1e-4
    assert [p.name for p in path.iterdir()] == ["out.wav"]  # no temporary file left


@pytest.mark.parametrize("audio_format, bit_depth, bits", [("wav", "16", 16), ("wav", "24", 24), ("wav", "32f", None),
                                                         ("flac", "16", 16), ("flac", "24", 24)])
def test_the_one_writer_rounds_to_the_nearest_step_and_counts_what_it_clips(tmp_path, audio_format, bit_depth, bits):
    x = np.stack([np.linspace(-1.5, 1.5, 4000), np.linspace(0.3, -0.3, 4000)], axis=1).astype(np.float32)
    path = tmp_path / f"out.{audio_format}"
    clipped = write_audio(path, x, 8000, audio_format, bit_depth)
    y, rate = read_audio(path)
    step = 2.0 ** (1 - bits) if bits else 0.0
    inside = np.abs(x) < 1 - step
    assert rate == 8000 and y.shape == x.shape
    assert np.max(np.abs(x - y)[inside]) <= step / 2 + 1e-9  # rounded, not truncated
    steps = np.round(x.astype(np.float64) * 2.0 ** (bits - 1)) if bits else np.zeros(1)
    assert clipped == int((steps > 2.0 ** (bits - 1) - 1).sum() + (steps < -2.0 ** (bits - 1)).sum() if bits else 0)
    assert clipped > 0 or not bits


def test_a_write_that_fails_midway_leaves_nothing(tmp_path):
    from audio import AudioWriter

    with pytest.raises(RuntimeError):
        with AudioWriter(tmp_path / "out.wav", 8000, 2) as writer:
            writer.write(np.zeros((100, 2), np.float32))
            raise RuntimeError("the separation failed")
    assert list(tmp_path.iterdir()) == []


def test_read_decodes_mp4_with_ffmpeg(stem_file):
    audio, rate = read_audio(stem_file)  # first stream of a stem file: the mixture
    assert rate == 44100 and audio.shape[1] == 2 and len(audio) > 5 * rate


def test_unreadable_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    with pytest.raises(AudioError, match="notes.wav"):
        read_audio(bad)
    with pytest.raises(AudioError, match="not found"):
        read_audio(tmp_path / "missing.wav")


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_blocks_are_read_as_libsndfile_reads_them_as_float(tmp_path, subtype):
    path = str(tmp_path / "song.wav")
    sf.write(path, noisy_song(0.5, 8000, 2) * 3 - 0.2, 8000, subtype=subtype)  # past full scale: clipped in PCM
    expected, _ = sf.read(path, dtype="float32", always_2d=True)
    with sf.SoundFile(path) as f:
        block = read_block(f, 100, 3000)
    assert block.dtype == np.float32 and block.shape == (2900, 2)
    np.testing.assert_array_equal(block, expected[100:3000])


def test_quantize_rounds_to_the_nearest_step_and_counts_what_it_clips():
    lsb = 2.0 ** -15
    audio = np.array([[0.4 * lsb, 0.6 * lsb], [-1.0, 1.0], [1.6 * lsb, -0.99999], [1.2, -1.2]], dtype=np.float32)
    ints, over = quantize(audio, 16)
    assert ints.dtype == np.int16 and ints.shape == audio.shape
    assert ints.tolist() == [[0, 1], [-32768, 32767], [2, -32768], [32767, -32768]]
    assert over == 3  # 1.0 is one step past the largest 16-bit value; 1.2 and -1.2
    ints, over = quantize(audio[:1] / 256, 24)  # 24 bits: int32 with the value in the top 24 bits
    assert ints.dtype == np.int32 and (ints >> 8).tolist() == [[0, 1]] and over == 0
    assert quantize(np.zeros((0, 2), np.float32), 16)[0].shape == (0, 2)


# --- Names are files, lengths come from the audio, the machine's faults are not the file's ---

def test_a_file_named_like_a_protocol_and_given_by_its_relative_name_is_read(tmp_path, monkeypatch):
    # ffmpeg takes `12:30 take 2.m4a` for protocol `12` unless it is given as file:/absolute/path.
    monkeypatch.chdir(tmp_path)
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=8000", "-c:a", "aac", "memo.m4a")
    os.rename("memo.m4a", "12:30 take 2.m4a")  # a voice memo's name
    audio, rate = read_audio("12:30 take 2.m4a")
    assert rate == 8000 and abs(len(audio) - 2 * rate) < 0.1 * rate
    assert probe_audio("12:30 take 2.m4a")[1:] == (8000, 1)


def test_a_stem_file_with_a_colon_in_its_name_is_read_by_relative_name(stem_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("12:30 set/test")
    shutil.copy(stem_file, "12:30 set/test/12:30 take.stem.mp4")
    shutil.copy(stem_file, "12:30 take.stem.mp4")
    with open_audio("12:30 take.stem.mp4", 4) as f:  # the vocals, ffmpeg's fourth audio stream
        assert f.frames > 5 * f.samplerate
    _, found, skipped = find_songs("12:30 set")  # stempeg's ffprobe and ffmpeg, given file: names
    assert not skipped and [song.name for song in found] == ["12:30 take"]
    assert len(found[0].read("vocals")) > 5 * found[0].rate


@pytest.mark.parametrize("codec, extension", [(("libmp3lame", "-q:a", "4"), "mp3"),
                                              (("libvorbis", "-q:a", "3"), "ogg")])
def test_a_file_whose_header_states_less_than_its_audio_is_read_whole(tmp_path, capsys, codec, extension):
    joined = joined_files(tmp_path, codec, extension)
    assert sf.info(str(joined)).duration == pytest.approx(4.0, abs=0.1)  # what libsndfile believes
    audio, rate = read_audio(joined)
    assert rate == 8000 and len(audio) == pytest.approx(10 * rate, abs=0.3 * rate)  # each file's encoder padding
    assert np.abs(audio[-2 * rate:-rate]).max() > 0.1  # the second file's tone, not silence
    assert re.search(rf"^warning: {re.escape(str(joined))}: its header says 4.0 s but its audio lasts 10.[0-2] s "
                     r"\(files joined end to end\?\): the audio's length is used$", capsys.readouterr().err, re.M)


def test_a_full_temporary_disk_is_named_not_blamed_on_the_file(tmp_path, monkeypatch):
    # The real ffmpeg writes its decoding where the disk is always full: /dev/full (ENOSPC on every write).
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1:sample_rate=8000", "-c:a", "aac", str(tmp_path / "memo.m4a"))

    class FullTemporaryDirectory(tempfile.TemporaryDirectory):
        def __init__(self, **kwargs):
            super().__init__(dir=tmp_path, **kwargs)
            os.symlink("/dev/full", os.path.join(self.name, "decoded.wav"))

    monkeypatch.setattr(tempfile, "TemporaryDirectory", FullTemporaryDirectory)
    with pytest.raises(DiskFullError, match=rf"^the disk of the temporary folder {tmp_path} is full .*so "
                                            rf"{tmp_path / 'memo.m4a'} could not be decoded into it: free some space, "
                                            r"or point TMPDIR .*\(the file is not at fault\)$"):
        read_audio(tmp_path / "memo.m4a")


def test_a_temporary_folder_ffmpeg_cannot_write_into_is_named_not_blamed_on_the_file(tmp_path, monkeypatch):
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1:sample_rate=8000", "-c:a", "aac", str(tmp_path / "memo.m4a"))

    class BlockedTemporaryDirectory(tempfile.TemporaryDirectory):
        def __init__(self, **kwargs):
            super().__init__(dir=tmp_path, **kwargs)
            os.mkdir(os.path.join(self.name, "decoded.wav"))  # ffmpeg's output cannot be opened: "Is a directory"

    monkeypatch.setattr(tempfile, "TemporaryDirectory", BlockedTemporaryDirectory)
    with pytest.raises(TemporaryFolderError, match=rf"^{tmp_path / 'memo.m4a'} could not be decoded into the "
                                                   rf"temporary folder {tmp_path} \(Is a directory\): point TMPDIR"):
        read_audio(tmp_path / "memo.m4a")


@pytest.mark.parametrize("code, error, words", [
    (errno.EROFS, TemporaryFolderError, "(Read-only file system): point TMPDIR at a folder you can write to"),
    (errno.EACCES, TemporaryFolderError, "(Permission denied): point TMPDIR at a folder you can write to"),
    (errno.ENOSPC, DiskFullError, "is full"),
])
def test_a_temporary_folder_that_cannot_be_made_is_named_not_blamed_on_the_file(stem_file, tmp_path, monkeypatch,
                                                                                code, error, words):
    def refused(*args, **kwargs):  # what mkdir says in a read-only, foreign or full $TMPDIR
        raise OSError(code, os.strerror(code), str(tmp_path / "tmp" / "unet-audio-x"))

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    with pytest.raises(error) as raised:
        read_audio(stem_file)
    assert str(tmp_path / "tmp") in str(raised.value) and words in str(raised.value)
    assert "(the file is not at fault)" in str(raised.value) and "not an audio file" not in str(raised.value)
    write_audio(tmp_path / "song.wav", noisy_song(0.5, 8000, 1), 8000)
    assert len(read_audio(tmp_path / "song.wav")[0]) == 4000  # a WAV needs no temporary folder


def test_an_unusable_tmpdir_is_named_not_blamed_on_the_file(stem_file, tmp_path, monkeypatch):
    (tmp_path / "a file").write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "a file" / "tmp"))  # a $TMPDIR under a file
    with pytest.raises(TemporaryFolderError, match=rf"^{stem_file} could not be decoded into the temporary folder "
                                                   rf"{tmp_path / 'a file' / 'tmp'} \(Not a directory\)"):
        read_audio(stem_file)
