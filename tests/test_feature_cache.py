"""feature_cache.py: each song decoded once, read back from the cache, in parallel or not, never trusted torn."""

import os

import numpy as np
import pytest

import data
import feature_cache
import songs
from data import load_features
from songs import split_data
from spectral import SignalConfig

SIGNAL = SignalConfig()

def test_second_load_reads_the_cache_only(toy_root, tmp_path, monkeypatch):
    split = split_data(toy_root, n_songs=2, quiet=True)
    first = load_features(split.train, SIGNAL, str(tmp_path), quiet=True)

    def no_decoding(*args):
        raise AssertionError("audio was decoded although it is cached")

    monkeypatch.setattr(data, "compute_features", no_decoding)  # what every decoded song goes through
    second = load_features(split.train, SIGNAL, str(tmp_path), quiet=True)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_songs_decoded_in_parallel_give_the_serial_cache_files(toy_root, tmp_path, monkeypatch):
    monkeypatch.setattr(feature_cache, "PARALLEL_SECONDS", 1)  # in parallel, short songs and all
    split = split_data(toy_root, n_songs=None, quiet=True)
    tracks = split.train + split.valid + split.test
    load_features(tracks, SIGNAL, str(tmp_path / "serial"), quiet=True, jobs=1)
    load_features(tracks, SIGNAL, str(tmp_path / "parallel"), quiet=True, jobs=2)
    names = sorted(os.listdir(tmp_path / "serial"))
    assert len(names) == len(tracks) and sorted(os.listdir(tmp_path / "parallel")) == names
    for name in names:  # the same bytes, file for file
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "parallel" / name).read_bytes(), name


def test_an_interrupted_first_run_keeps_the_songs_it_decoded(toy_root, tmp_path, monkeypatch):
    split = split_data(toy_root, n_songs=None, quiet=True)
    real, calls = data.compute_features, []

    def ctrl_c_on_the_third_song(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(data, "compute_features", ctrl_c_on_the_third_song)
    with pytest.raises(KeyboardInterrupt):
        load_features(split.train, SIGNAL, str(tmp_path), quiet=True)
    kept = sorted(os.listdir(tmp_path))
    assert len(kept) == 2 and not [name for name in kept if name.startswith(".tmp-")]
    monkeypatch.setattr(data, "compute_features", real)
    load_features(split.train, SIGNAL, str(tmp_path), quiet=True)
    assert set(kept) < set(os.listdir(tmp_path))  # the rest, the first two left as they were


def test_cache_key_follows_signal_settings_and_torn_files_are_rebuilt(toy_root, tmp_path):
    split = split_data(toy_root, n_songs=1, quiet=True)
    track = split.train[0]
    other = SignalConfig(hop_length=512)
    assert feature_cache.cache_path(track, SIGNAL, str(tmp_path)) != \
        feature_cache.cache_path(track, other, str(tmp_path))
    good = np.array(load_features([track], SIGNAL, str(tmp_path), quiet=True)[0])  # off the map
    path = feature_cache.cache_path(track, SIGNAL, str(tmp_path))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    rebuilt = load_features([track], SIGNAL, str(tmp_path), quiet=True)[0]
    assert np.array_equal(good, rebuilt)


def test_a_damaged_cache_file_is_rebuilt_never_trusted(toy_root, tmp_path, capsys):
    split = songs.split_data(toy_root, n_songs=1, quiet=True)
    good = np.array(data.load_features(split.train, songs.SignalConfig(), str(tmp_path), quiet=True)[0])
    path = feature_cache.cache_path(split.train[0], SignalConfig(), str(tmp_path))
    for damage in (b"", b"\x93NUMPY\x01\x00garbage", open(path, "rb").read()[:200]):  # power cut, foreign, short
        open(path, "wb").write(damage)
        assert np.array_equal(data.load_features(split.train, songs.SignalConfig(), str(tmp_path), quiet=True)[0],
                              good)
        assert "is damaged; rebuilding it" in capsys.readouterr().out
