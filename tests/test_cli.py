"""cli.py: the flag types every script uses, the song lookup, the aliases of old flag names."""

import argparse
import os
import shlex
import sys
from types import SimpleNamespace

import pytest

import evaluate
import inference
import train
from cli import UserError, bounded_number, pasteable, positive_int_or_all, runnable
from songs import find_song


@pytest.mark.parametrize("kind, low, high, low_open, text, expected", [
    (int, 1, 10, False, "1", 1),
    (int, 1, 10, False, "10", 10),
    (int, 0, 10, False, "0", 0),
    (float, 0.0, 1.0, True, "1e-3", 1e-3),
    (float, 0.0, 0.99, False, "0", 0.0),
])
def test_bounded_number_accepts_its_range(kind, low, high, low_open, text, expected):
    value = bounded_number(kind, low, high, low_open)(text)
    assert value == expected and type(value) is kind


@pytest.mark.parametrize("kind, low, high, low_open, text, message", [
    (int, 1, 10, False, "0", "must be at least 1 and at most 10, got 0"),
    (int, 1, 10, False, "-3", "must be at least 1"),
    (int, 1, 10, False, "11", "at most 10, got 11"),
    (int, 1, 10, False, "1e12", "expected a whole number, got '1e12'"),
    (int, 1, 10, False, "abc", "expected a whole number, got 'abc'"),
    (int, 1, 10, False, "2.5", "expected a whole number"),
    (float, 0.0, 1.0, True, "0", "must be above 0 and at most 1, got 0"),
    (float, 0.0, 1.0, True, "nan", "must be above 0"),
    (float, 0.0, 1.0, True, "inf", "at most 1, got inf"),
    (float, 0.0, 1.0, True, "abc", "expected a number, got 'abc'"),
])
def test_bounded_number_refuses_with_the_bound_in_the_message(kind, low, high, low_open, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        bounded_number(kind, low, high, low_open)(text)


@pytest.mark.parametrize("text, expected", [("1", 1), ("86", 86), ("all", None)])
def test_positive_int_or_all(text, expected):
    assert positive_int_or_all(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "some", "1.5"])
def test_positive_int_or_all_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int_or_all(text)


def test_find_song_ignores_case_and_names_some_songs_when_missing():
    tracks = [SimpleNamespace(name=f"Song {i}") for i in range(8)]
    assert find_song(tracks, "song 3", "/root") is tracks[3]
    with pytest.raises(UserError, match=r"no test song named 'Nope' in /root; some there are: Song 0, .*Song 4$"):
        find_song(tracks, "Nope", "/root", "test")


@pytest.mark.parametrize("old, new", [("--tracks", "--songs"), ("--track", "--songs"), ("--n-tracks", "--n-songs")])
def test_old_flag_spellings_still_work(old, new):
    value = ["Toy Song test 01"] if "n-" not in old else "2"
    as_typed = [old] + (value if isinstance(value, list) else [value])
    canonical = [new] + (value if isinstance(value, list) else [value])
    assert vars(evaluate.get_args(as_typed)) == vars(evaluate.get_args(canonical))
    if "n-" not in old:
        assert inference.get_args(as_typed).songs == ["Toy Song test 01"]


def test_printed_commands_run_as_pasted_with_or_without_the_environment_active(monkeypatch, tmp_path):
    folder = os.path.dirname(os.path.abspath(sys.executable))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # not activated: the interpreter and its tools by path
    assert runnable() == shlex.quote(os.path.abspath(sys.executable))
    assert runnable("tensorboard") == shlex.quote(os.path.join(folder, "tensorboard"))
    monkeypatch.setenv("PATH", folder)  # activated: the bare names find the same programs
    assert runnable("tensorboard") == "tensorboard"
    assert pasteable(tmp_path / "a b" / "c.pth") == "'a b/c.pth'"
    assert pasteable("/elsewhere/c.pth") == "/elsewhere/c.pth"


@pytest.mark.parametrize("script", [train, inference, evaluate])
def test_a_bad_flag_is_one_line_that_points_at_help(script, capsys):
    with pytest.raises(SystemExit) as stop:
        script.get_args(["--no-such-flag"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --no-such-flag" in err and err.endswith("(see --help)\n")
