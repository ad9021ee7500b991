"""What comes in, checked once where it enters: checkpoints' fields, damaged audio files."""

import numpy as np
import pytest
import soundfile as sf

import inference
from audio import AudioError, open_audio, read_audio, read_block
from conftest import joined_files, noisy_song


def cut_short(path, fraction):
    """The file at `path` cut to its first `fraction` of bytes, as a stopped download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])


def test_a_flac_cut_short_is_read_through_ffmpeg_up_to_the_cut(tmp_path):
    mix = noisy_song(4.0, 8000, 2)
    sf.write(tmp_path / "song.flac", mix, 8000, subtype="PCM_16")
    cut_short(tmp_path / "song.flac", 0.6)
    with pytest.raises(sf.LibsndfileError):  # what libsndfile itself does with it
        sf.read(tmp_path / "song.flac")
    audio, rate = read_audio(tmp_path / "song.flac")
    assert rate == 8000 and 0 < len(audio) < len(mix)
    np.testing.assert_allclose(audio, mix[:len(audio)], atol=1 / 32768)


def test_a_flac_cut_short_is_separated_as_far_as_it_goes(tiny_checkpoint, tmp_path):
    sf.write(tmp_path / "song.flac", noisy_song(4.0, 8000, 2), 8000, subtype="PCM_16")
    cut_short(tmp_path / "song.flac", 0.6)
    inference.main([str(tmp_path / "song.flac"), "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out"),
                    "--no-plot", "--quiet"])
    assert sf.info(tmp_path / "out" / "song" / "vocals.wav").frames == len(read_audio(tmp_path / "song.flac")[0])


def test_a_file_damaged_in_the_middle_is_one_audio_error_naming_it(tmp_path):
    path = tmp_path / "song.flac"
    sf.write(path, noisy_song(4.0, 8000, 2), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 2000] = bytes(2000)  # the end is whole: open_audio cannot tell
    path.write_bytes(bytes(data))
    with open_audio(path) as f, pytest.raises(AudioError, match=r"song.flac is damaged after 0 s .*download it again"):
        read_block(f, 0, f.frames)


def test_mp3s_joined_with_cat_are_separated_whole_not_as_long_as_the_first_header_says(tiny_checkpoint, tmp_path):
    joined = joined_files(tmp_path)  # libsndfile reads 4 s of it: what the first file's Xing header says
    inference.main([str(joined), "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out"), "--no-plot",
                    "--quiet"])
    assert sf.info(tmp_path / "out" / "joined" / "vocals.wav").duration > 9.9
