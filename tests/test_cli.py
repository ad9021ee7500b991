"""cli.py: the flag types every script uses, the song lookup, the aliases of old flag names, and the
standard streams: a reader that leaves, a stream closed from the start."""

import argparse
import json
import os
import shlex
import subprocess
import sys
from types import SimpleNamespace

import pytest
import soundfile as sf

import evaluate
import inference
import train
from cli import UserError, bounded_number, pasteable, positive_int_or_all, runnable
from conftest import noisy_song
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


# --- A closed or broken standard output is the reader leaving ---

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def three_songs(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    for i in range(3):
        sf.write(folder / f"s{i}.wav", noisy_song(3.0, 8000, 1, seed=i), 8000)
    return folder


def whole_outputs(out):
    """The song folders under `out`, after checking each holds every file its record lists, readable, and no
    temporary file is left anywhere."""
    assert not [p for p in out.rglob(".tmp-*")]
    for folder in out.iterdir():
        for name in json.loads((folder / "separation.json").read_text())["files"]:
            assert sf.info(folder / name).frames == 3 * 8000
    return sorted(folder.name for folder in out.iterdir())


def a_closed_pipe():
    """The writing end of a pipe whose reader is already gone: every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.slow
def test_a_reader_that_leaves_after_the_first_line_stops_inference_with_every_output_whole(tiny_checkpoint, tmp_path):
    # python inference.py FOLDER | head -1
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "inference.py", str(three_songs(tmp_path)), "--checkpoint",
                                tiny_checkpoint, "--out-dir", str(out), "--no-plot", "--cpu"], cwd=PROJECT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()
    process.stdout.close()  # head has read its line
    err = process.stderr.read()
    assert process.wait(timeout=120) == 141 and "Traceback" not in err, err
    assert first.startswith("[1/3] ") and err.startswith("Interrupted after ")
    assert whole_outputs(out)[:1] == ["s0"]


@pytest.mark.slow
def test_a_pipe_closed_from_the_start_keeps_the_first_song_whole_and_ends_141(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    pipe = a_closed_pipe()
    run = subprocess.run([sys.executable, "inference.py", str(three_songs(tmp_path)), "--checkpoint", tiny_checkpoint,
                          "--out-dir", str(out), "--no-plot", "--cpu"], cwd=PROJECT, stdout=pipe,
                         stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(pipe)
    assert run.returncode == 141 and run.stderr == f"Interrupted after {tmp_path / 'songs' / 's0.wav'}: it is " \
                                                   "complete, and a rerun skips it.\n"
    assert whole_outputs(out) == ["s0"]  # its line was the first to find the reader gone


@pytest.mark.slow
def test_training_whose_reader_is_gone_stops_as_on_ctrl_c_and_saves_last_model(toy_root, tmp_path):
    pipe = a_closed_pipe()
    run = subprocess.run([sys.executable, "train.py", "--channels", "4", "8", "--batch-size", "4",
                          "--samples-per-track", "2", "--epochs", "3", "--cpu", "--root", toy_root, "--cache-dir",
                          str(tmp_path / "cache"), "--save-dir", str(tmp_path / "ckpt")], cwd=PROJECT, stdout=pipe,
                         stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(pipe)
    assert run.returncode == 141 and run.stderr == ""
    from checkpoints import load_checkpoint

    assert load_checkpoint(str(tmp_path / "ckpt" / "last_model.pth"))["epoch"] == 0  # stopped in the first epoch


@pytest.mark.slow
def test_data_py_whose_reader_is_gone_ends_141_without_a_traceback(toy_root, tmp_path):
    pipe = a_closed_pipe()
    run = subprocess.run([sys.executable, "data.py", "--root", toy_root, "--cache-dir", str(tmp_path / "cache")],
                         cwd=PROJECT, stdout=pipe, stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(pipe)
    assert (run.returncode, run.stderr) == (141, "")


@pytest.mark.slow
def test_a_standard_output_closed_from_the_start_is_like_dev_null(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(["bash", "-c", '"$0" inference.py "$1" --checkpoint "$2" --out-dir "$3" --no-plot --cpu >&-',
                          sys.executable, str(three_songs(tmp_path)), tiny_checkpoint, str(out)],
                         cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stderr) == (0, "")
    assert whole_outputs(out) == ["s0", "s1", "s2"]


def test_a_closed_standard_stream_is_never_the_number_of_a_file_opened_later():
    # Else what is written to it (a library's warning, a child process) would go into that file.
    check = "import cli, os; os.write(3, str(open(cli.__file__).fileno()).encode())"  # fd 3: the test's pipe
    for closed in (">&-", "2>&-", "<&-"):
        run = subprocess.run(["bash", "-c", f'"$0" -c "$1" 3>&1 {closed}', sys.executable, check], cwd=PROJECT,
                             capture_output=True, text=True, timeout=60)
        assert int(run.stdout) > 3, (closed, run.stdout, run.stderr)


def test_the_command_line_module_imports_no_torch():
    """Every script imports cli first, to say what is missing and catch Ctrl-C while torch loads: it must not
    load torch itself (the device's choices are device.py's)."""
    code = "import sys, cli; sys.exit('torch' in sys.modules or 'numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT).returncode == 0
