"""songs.py: songs picked by name, the same way for inference.py and evaluate.py."""

from types import SimpleNamespace

import pytest

import evaluate
import inference
from songs import DataError, find_song, find_songs_by_name


def named(*names):
    return [SimpleNamespace(name=name, path=f"/root/test/{name}/mixture.wav") for name in names]


def test_the_exact_name_comes_first_and_another_case_only_where_it_is_unique():
    found = named("Live Take", "live take", "Intro")
    assert find_song(found, "live take", "/root") is found[1]
    assert find_song(found, "Live Take", "/root") is found[0]
    assert find_song(found, "INTRO", "/root") is found[2]
    with pytest.raises(DataError) as ambiguous:
        find_song(found, "LIVE TAKE", "/root")
    assert str(ambiguous.value) == ("'LIVE TAKE' could be any of 'Live Take', 'live take' (their names differ only in "
                                    "case): give the one you mean as it is spelled")


def test_a_song_left_out_under_the_exact_name_is_not_mistaken_for_another_case():
    found = named("Live Take")
    skipped = [("/root/test/live take", "vocals.wav cannot be read")]
    with pytest.raises(DataError, match="the song 'live take' was left out: vocals.wav cannot be read"):
        find_song(found, "live take", "/root", skipped=skipped)
    assert find_song(found, "LIVE take", "/root", skipped=skipped[:0]) is found[0]


def test_a_song_named_twice_counts_once_in_the_order_first_named():
    found = named("Song A", "Song B")
    assert find_songs_by_name(found, ["song b", "Song A", "Song B", "SONG A"], "/root") == [found[1], found[0]]


def test_inference_and_evaluate_pick_a_song_named_twice_once(toy_root):
    names = ["--root", toy_root, "--songs", "Toy Song test 01", "toy song test 01", "--quiet"]
    assert [name for name, _ in inference.songs_to_separate(inference.get_args(names))] == ["Toy Song test 01"]
    _, picked, _ = evaluate.pick_songs(evaluate.get_args(names))
    assert [song.name for song in picked] == ["Toy Song test 01"]
