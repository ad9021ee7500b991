"""evaluate.py: BSS Eval scores of the U-Net and its references, kept per song, so that every journey can be made
twice: a rerun, a rerun after Ctrl-C or a killed worker, a second checkpoint, --estimates-dir again."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import evaluate
import metrics
from conftest import noisy_song
from inference import load_model, separate
from test_robustness import checksums, copy_root, cut, every_stem, with_nan

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST_SONG = "Toy Song test 01"  # of the toy set's two test songs


def evaluate_runs(toy_root, checkpoint, tmp_path, out, cache="cache", *flags):
    evaluate.main(["--root", toy_root, "--checkpoint", checkpoint, "--out", str(tmp_path / out),
                   "--cache-dir", str(tmp_path / cache), "--quiet", *flags])
    return (tmp_path / out).read_bytes()


def another_model(checkpoint, tmp_path):
    """A checkpoint beside `checkpoint` whose model predicts another mask."""
    other = tmp_path / "other.pth"
    state = torch.load(checkpoint, weights_only=True)
    state["model"]["head.bias"] += 1.0
    torch.save(state, other)
    return str(other)


def quick_bss_eval(references, estimates, rate):
    """One number per estimate (its mean magnitude) in place of BSS Eval's, for the tests of what evaluate does
    with scores rather than of their values: about a second less per song, and an estimate that changes shows."""
    return {target: {metric: float(np.abs(estimate).mean()) for metric in metrics.METRICS}
            for target, estimate in zip(metrics.TARGETS, estimates)}


@pytest.fixture
def instant_scoring(monkeypatch):
    """evaluate_track without its work, for the tests of what evaluate keeps and writes: the estimates split the
    mixture by a share that depends on the model (another_model's is another), scored by quick_bss_eval."""
    def estimated(song, model, signal_config, options, methods):
        share = torch.sigmoid(model.head.bias).mean().item()
        estimates = (share * song.read("mixture"), (1 - share) * song.read("mixture"))
        return {method: quick_bss_eval(None, estimates, song.rate) for method in methods}, estimates

    monkeypatch.setattr(metrics, "evaluate_track", estimated)


def scored_rows(monkeypatch):
    """The list that gets, for each song evaluate_track scores from now on, the methods it was asked for."""
    asked, real_track = [], metrics.evaluate_track

    def recorded(track, model, signal_config, options, methods):
        asked.append(tuple(methods))
        return real_track(track, model, signal_config, options, methods)

    monkeypatch.setattr(metrics, "evaluate_track", recorded)
    return asked


def files_below(folder):
    """{relative path: bytes} of every file below `folder`."""
    return {os.path.relpath(os.path.join(parent, name), folder): open(os.path.join(parent, name), "rb").read()
            for parent, _, names in os.walk(folder) for name in names}


# --- The scores ---

@pytest.mark.slow
def test_evaluate_scores_one_short_toy_track(toy_root, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "scores.json"
    evaluate.main(["--root", toy_root, "--checkpoint", tiny_checkpoint, "--n-test-songs", "1", "--out", str(out),
                   "--estimates-dir", str(tmp_path / "est"), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1",
                   "--quiet"])
    scores = json.loads(out.read_text())
    (track,) = scores["tracks"]
    for method in metrics.METHODS:
        for target in ("vocals", "accompaniment"):
            assert all(np.isfinite(v) for v in scores["tracks"][track][method][target].values())
    assert scores["median"]["oracle 8 kHz"]["vocals"]["SDR"] > scores["median"]["mixture"]["vocals"]["SDR"] + 3
    assert os.path.isfile(tmp_path / "est" / "test" / track / "vocals.wav")
    assert "MEDIAN over songs" in capsys.readouterr().out


@pytest.mark.slow
def test_evaluate_scores_a_model_that_predicts_silence(toy_root, tiny_checkpoint, tmp_path):
    # museval refuses an all-zero estimate; a model with an empty mask must still get a (bad) score.
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["model"]["head.weight"].zero_()
    state["model"]["head.bias"].fill_(-1e4)  # sigmoid(-1e4) is 0 in float32: the mask is 0 everywhere
    silent = str(tmp_path / "silent.pth")
    torch.save(state, silent)
    model, signal = load_model(silent)
    assert not separate(model, signal, noisy_song(1.0, 8000, 2), 8000)[0].any()
    out = tmp_path / "scores.json"
    evaluate.main(["--root", toy_root, "--checkpoint", silent, "--n-test-songs", "1", "--out", str(out),
                   "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--quiet"])
    medians = json.loads(out.read_text())["median"]
    assert medians["U-Net"]["vocals"]["SIR"] < medians["oracle 8 kHz"]["vocals"]["SIR"]


def test_songs_scored_at_once_are_as_many_as_the_free_memory_holds(monkeypatch, capsys):
    class Song:
        name, rate = "Long Song", 44100
        duration = 5 * 60.0  # padded to 2**24 points: about 5.4 GB

    need = metrics.scoring_bytes(Song.duration, Song.rate)
    monkeypatch.setattr(evaluate, "available_bytes", lambda: 3 * need)
    assert evaluate.workers_that_fit(4, [Song()]) == 3
    assert "Scoring 3 songs at a time, not 4" in capsys.readouterr().out
    assert evaluate.workers_that_fit(2, [Song()]) == 2
    monkeypatch.setattr(evaluate, "available_bytes", lambda: need // 2)
    assert evaluate.workers_that_fit(4, [Song()]) == 1
    assert "needs about 5.4 GB of memory and 2.7 GB is free" in capsys.readouterr().out
    monkeypatch.setattr(evaluate, "available_bytes", lambda: None)  # not Linux: --jobs as asked
    assert evaluate.workers_that_fit(4, [Song()]) == 4


# --- Every journey twice ---

def test_a_finished_evaluation_run_again_prints_its_table_from_the_cache(toy_root, tiny_checkpoint, tmp_path,
                                                                         monkeypatch, capsys, instant_scoring):
    first = evaluate_runs(toy_root, tiny_checkpoint, tmp_path, "scores.json", "cache", "--jobs", "1")
    capsys.readouterr()
    asked = scored_rows(monkeypatch)
    for jobs in ("1", "2"):  # every row cached: no job left, for one worker or more (was a ZeroDivisionError)
        assert evaluate_runs(toy_root, tiny_checkpoint, tmp_path, "scores.json", "cache", "--jobs", jobs) == first
        assert "MEDIAN over songs" in capsys.readouterr().out
    assert asked == []


def test_estimates_are_made_once_per_checkpoint_and_made_again_for_another(toy_root, tiny_checkpoint, tmp_path,
                                                                           monkeypatch, instant_scoring):
    asked, estimates = scored_rows(monkeypatch), tmp_path / "estimates"

    def run(checkpoint):
        asked.clear()
        evaluate_runs(toy_root, checkpoint, tmp_path, "scores.json", "cache", "--jobs", "1",
                      "--estimates-dir", str(estimates))
        return list(asked), files_below(estimates)

    first_rows, first = run(tiny_checkpoint)
    assert len(first_rows) == 2 and sorted(first) == sorted(
        os.path.join("test", song, name) for song in (FIRST_SONG, "Toy Song test 02")
        for name in ("vocals.wav", "accompaniment.wav", "separation.json"))
    assert run(tiny_checkpoint) == ([], first)  # the estimates are there, whole: nothing scored again
    other_rows, other = run(another_model(tiny_checkpoint, tmp_path))
    assert other_rows == [("U-Net",)] * 2 and other != first  # the other model's estimates replace them
    assert run(tiny_checkpoint) == ([("U-Net",)] * 2, first)  # and the first model's come back, the same


def test_a_stop_at_any_write_leaves_what_the_same_command_then_completes(toy_root, tiny_checkpoint, tmp_path,
                                                                        monkeypatch, instant_scoring):
    """Each file is renamed into place whole (files.atomic_path); stopped before any rename, or after the
    last, the estimates, their record, the cached rows and the scores are left so that the command run
    again finishes, with what one run without a stop writes."""
    real_replace, renamed = os.replace, []

    def run(name, replace):
        monkeypatch.setattr(os, "replace", replace)
        try:
            evaluate.main(["--root", toy_root, "--checkpoint", tiny_checkpoint, "--songs", FIRST_SONG, "--jobs", "1",
                           "--out", str(tmp_path / name / "scores.json"), "--cache-dir", str(tmp_path / name / "cache"),
                           "--estimates-dir", str(tmp_path / name / "estimates"), "--quiet"])
        finally:
            monkeypatch.setattr(os, "replace", real_replace)
        return files_below(tmp_path / name)

    whole = run("whole", lambda *args: renamed.append(os.path.basename(args[1])) or real_replace(*args))
    # The record first, naming no model, then the estimates, then the record naming the model; the rows, the scores.
    assert renamed[:4] == ["separation.json", "vocals.wav", "accompaniment.wav", "separation.json"]
    assert len(renamed) == 8 and renamed[-2:] == ["scores.json", "scores.json"]

    for k in range(len(renamed) + 1):  # stopped before rename k; k == len(renamed): after the last one
        calls = []

        def stopped(*args):
            calls.append(args)
            if len(calls) == k + 1:
                raise KeyboardInterrupt  # before this rename
            real_replace(*args)
            if len(calls) == k == len(renamed):
                raise KeyboardInterrupt  # after the last one

        with pytest.raises(SystemExit) as stop:
            run(f"stop{k}", stopped)
        assert stop.value.code == 130 and len(calls) == min(k + 1, len(renamed))
        assert run(f"stop{k}", real_replace) == whole, f"stopped before {renamed[k:k + 1] or 'nothing'}"


def test_a_second_checkpoint_scores_only_its_own_row(toy_root, tiny_checkpoint, tmp_path, monkeypatch,
                                                     instant_scoring):
    evaluate_runs(toy_root, tiny_checkpoint, tmp_path, "first.json", "cache", "--jobs", "1")
    other = another_model(tiny_checkpoint, tmp_path)
    asked = scored_rows(monkeypatch)
    second = json.loads(evaluate_runs(toy_root, str(other), tmp_path, "second.json", "cache", "--jobs", "1"))
    assert asked == [("U-Net",), ("U-Net",)]  # the two test songs, the model's row alone
    first = json.loads((tmp_path / "first.json").read_text())
    assert second["median"]["oracle full"] == first["median"]["oracle full"]
    assert second["median"]["U-Net"] != first["median"]["U-Net"]


@pytest.mark.slow
def test_songs_scored_in_parallel_give_the_serial_scores(short_test_root, tiny_checkpoint, tmp_path):
    """The same to float rounding: a worker computes with 1 thread, the serial run with all of them."""
    serial = json.loads(evaluate_runs(short_test_root, tiny_checkpoint, tmp_path, "serial.json", "cache1", "--jobs",
                                      "1"))
    parallel = json.loads(evaluate_runs(short_test_root, tiny_checkpoint, tmp_path, "parallel.json", "cache2",
                                        "--jobs", "2"))
    assert len(serial["tracks"]) == 3
    assert list(parallel["tracks"]) == list(serial["tracks"])  # the songs' order, whichever finished first
    for song, methods in serial["tracks"].items():
        for method, targets in methods.items():
            for target, values in targets.items():
                assert parallel["tracks"][song][method][target] == pytest.approx(values, abs=1e-3)


# --- Ctrl-C and workers that die ---

def test_ctrl_c_during_evaluation_says_one_line_exits_130_and_writes_no_scores(toy_root, tiny_checkpoint, tmp_path,
                                                                              monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(metrics, "evaluate_track", interrupted)
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--root", toy_root, "--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "s.json"),
                       "--cache-dir", str(tmp_path / "cache"), "--jobs", "1"])
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip().startswith("Interrupted: no scores written to")
    assert not (tmp_path / "s.json").exists()


def test_an_interrupted_evaluation_goes_on_to_the_same_scores(toy_root, tiny_checkpoint, tmp_path, monkeypatch,
                                                              capsys, instant_scoring):
    whole = evaluate_runs(toy_root, tiny_checkpoint, tmp_path, "whole.json", "cache1", "--jobs", "1")
    real_track, calls = metrics.evaluate_track, []

    def ctrl_c_on_the_second_song(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_track(*args, **kwargs)

    monkeypatch.setattr(metrics, "evaluate_track", ctrl_c_on_the_second_song)
    with pytest.raises(SystemExit) as stop:
        evaluate_runs(toy_root, tiny_checkpoint, tmp_path, "resumed.json", "cache2", "--jobs", "1")
    assert stop.value.code == 130 and "holds the 1 songs scored so far" in capsys.readouterr().err
    assert json.loads((tmp_path / "resumed.json").read_text())["songs_scored"] == 1  # the first song, already there
    monkeypatch.setattr(metrics, "evaluate_track", real_track)
    assert evaluate_runs(toy_root, tiny_checkpoint, tmp_path, "resumed.json", "cache2", "--jobs", "1") == whole


def worker_pids(parent):
    """The spawned worker processes of `parent` (not multiprocessing's resource tracker)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
            command = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"spawn_main" in command:
            pids.append(int(pid))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker processes in /proc")
def test_evaluate_with_a_worker_killed_ends_keeps_what_was_scored_and_a_rerun_finishes(toy_root, tiny_checkpoint,
                                                                                     tmp_path):
    root = copy_root(toy_root, tmp_path)
    first = sorted((root / "test").iterdir())[0]
    shutil.copytree(first, root / "test" / "Toy Song test 03")  # 3 songs for 2 workers
    out = tmp_path / "scores.json"
    command = [sys.executable, os.path.join(PROJECT, "evaluate.py"), "--root", str(root), "--checkpoint",
               tiny_checkpoint, "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--jobs", "2", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not out.exists():  # the first song is scored: its rows are kept
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.05)
    killed = time.time()
    for pid in worker_pids(process.pid):  # the out-of-memory killer's way: SIGKILL, no word
        os.kill(pid, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=60)
    assert time.time() - killed < 60 and process.returncode == 1, stdout + stderr
    assert "died (exit code -9; killed by the system" in stderr and "with --jobs 1" in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    kept = json.loads(out.read_text())["songs_scored"]
    assert kept >= 1
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert json.loads(out.read_text())["songs_scored"] == 3


# --- The songs ---

def test_evaluate_lists_the_songs_it_could_not_score_and_exits_non_zero(toy_root, tiny_checkpoint, tmp_path,
                                                                        instant_scoring):
    root = copy_root(toy_root, tmp_path)
    test_songs = sorted((root / "test").iterdir())
    cut("vocals.wav", 3.0)(test_songs[0])
    before = checksums(root)
    out = tmp_path / "scores.json"
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--root", str(root), "--checkpoint", tiny_checkpoint, "--out", str(out), "--jobs", "1",
                       "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    message = str(stop.value.code)
    assert message.startswith("error: 1 song could not be scored (") and "vocals.wav lasts 3.00 s" in message
    scores = json.loads(out.read_text())
    assert list(scores["tracks"]) == [test_songs[1].name]  # the other song is scored
    assert list(scores["skipped"]) == [str(test_songs[0])]  # the song's folder
    with pytest.raises(SystemExit) as stop:  # asked for by name: why it cannot be
        evaluate.main(["--root", str(root), "--checkpoint", tiny_checkpoint, "--out", str(out), "--jobs", "1",
                       "--songs", test_songs[0].name, "--quiet"])
    assert str(stop.value.code).startswith(f"error: the song '{test_songs[0].name}' was left out: vocals.wav lasts")
    assert checksums(root) == before


def test_when_every_test_song_is_left_out_the_error_names_each_and_why(toy_root, tiny_checkpoint, tmp_path):
    root = copy_root(toy_root, tmp_path)
    first, second = sorted((root / "test").iterdir())
    shutil.rmtree(second)
    cut("vocals.wav", 3.0)(first)  # the only test song is left out when it is found
    argv = ["--root", str(root), "--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "scores.json"),
            "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--quiet"]
    with pytest.raises(SystemExit) as stop:
        evaluate.main(argv)
    assert stop.value.code == (f"error: {root} has no test songs under test/ to score (1 left out: {first.name}: "
                               "vocals.wav lasts 3.00 s and mixture.wav 14.00 s: one of them is cut short)")
    shutil.rmtree(first)
    shutil.copytree(os.path.join(toy_root, "test", first.name), first)
    every_stem(with_nan)(first)  # left out when it is scored
    with pytest.raises(SystemExit) as stop:
        evaluate.main(argv)
    assert stop.value.code == f"error: no song could be scored: {first.name}: its mixture holds NaN or infinite samples"


def test_a_song_named_twice_is_scored_once(toy_root, tiny_checkpoint, tmp_path, instant_scoring):
    scores = json.loads(evaluate_runs(toy_root, tiny_checkpoint, tmp_path, "scores.json", "cache", "--jobs", "1",
                                      "--songs", FIRST_SONG, FIRST_SONG.lower(), FIRST_SONG))
    assert (scores["songs"], scores["songs_scored"], list(scores["tracks"])) == (1, 1, [FIRST_SONG])


@pytest.mark.parametrize("flag, where", [("--estimates-dir", "."), ("--estimates-dir", "test"), ("--out", "x.json")])
def test_evaluate_never_writes_inside_the_data_root(toy_root, tiny_checkpoint, tmp_path, flag, where):
    root = copy_root(toy_root, tmp_path)
    before = checksums(root)
    argv = ["--root", str(root), "--checkpoint", tiny_checkpoint, "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "s.json"), flag, str(root / where), "--jobs", "1", "--quiet"]
    with pytest.raises(SystemExit) as stop:
        evaluate.main(argv)
    assert f"{flag} {root / where} is inside the data root {root}" in str(stop.value.code)
    assert checksums(root) == before


# --- The flags ---

@pytest.mark.parametrize("old", ["--n-songs", "--n-tracks"])
def test_the_count_of_test_songs_is_n_test_songs_and_the_old_spellings_say_so(old, capsys):
    assert evaluate.get_args([old, "2"]).n_test_songs == evaluate.get_args(["--n-test-songs", "2"]).n_test_songs == 2
    assert capsys.readouterr().err == (f"Warning: {old} is now --n-test-songs (it counts test songs, where train.py's "
                                       "counts training songs); the old name will go.\n")


def test_scores_never_go_over_a_file_the_command_reads(toy_root, tiny_checkpoint, tmp_path):
    checkpoint = tmp_path / "model.pth"
    shutil.copy(tiny_checkpoint, checkpoint)
    before = checkpoint.read_bytes()
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--root", toy_root, "--checkpoint", str(checkpoint), "--out", str(checkpoint), "--quiet"])
    assert "an input of this command, so it is not written over" in str(stop.value.code)
    assert checkpoint.read_bytes() == before
