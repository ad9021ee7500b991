"""toy_set.py: the generated toy set, in the MUSDB18-HQ layout, its mixture the exact sum of its stems."""

import errno
import os

import numpy as np
import pytest
import soundfile as sf


def test_toy_set_is_musdb_hq_shaped_and_mixture_is_exact_sum(toy_root):
    songs = sorted(os.listdir(os.path.join(toy_root, "train")))
    assert len(songs) == 4 and len(os.listdir(os.path.join(toy_root, "test"))) == 2
    folder = os.path.join(toy_root, "train", songs[0])
    assert sorted(os.listdir(folder)) == ["bass.wav", "drums.wav", "mixture.wav", "other.wav", "vocals.wav"]
    stems = {name: sf.read(os.path.join(folder, f"{name}.wav"), dtype="int16")[0].astype(np.int32)
             for name in ("mixture", "vocals", "drums", "bass", "other")}
    assert stems["mixture"].shape[1] == 2  # stereo
    assert np.array_equal(stems["mixture"], stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"])
    info = sf.info(os.path.join(folder, "mixture.wav"))
    assert info.samplerate == 11025 and info.duration == pytest.approx(14.0, abs=0.01)


def test_a_toy_set_that_cannot_be_written_is_one_sentence(tmp_path, monkeypatch):
    import toy_set

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(toy_set.tempfile, "mkdtemp", read_only)
    with pytest.raises(toy_set.ToySetError, match="cannot write the toy data set to .* \\(Read-only file system\\)"):
        toy_set.ensure_toy_musdb(str(tmp_path / "toy"), quiet=True)
