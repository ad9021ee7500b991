"""Each command with every write-side file operation failing in turn (tests/faults.py), then with its standard
output closed or broken.

The commands, each on tiny data in a fresh folder of its own (a workspace)
for every run:

    train       train.py, two tiny epochs, figures every epoch, on a copy of the tiny toy set, an empty cache
    inference   inference.py on a folder of three tiny WAV files, with the tiny checkpoint
    evaluate    evaluate.py on three test songs (--jobs 1), with --estimates-dir
    data        python data.py, building its (tiny) toy set

For each: a clean run counts N, the write-side operations it performs, and
the outputs it leaves. Then for each k chosen (fault_checks.plan), a run whose
k-th operation fails must either succeed with every output whole and the
outputs of a clean run, or exit non-zero with one closing "error:" line, no
traceback, nothing half-written, no input changed (fault_checks.check_run);
and the same command typed again without faults (train.py with --resume where
a checkpoint was left) must complete with the same outputs, all whole.

The misbehaving runs are collected over every k, grouped by cause
(fault_checks.report), and the test fails once at the end; conftest.py prints
every command's summary. A train.py report (TensorBoard, history.csv,
loss_curve.png) failing once must be a warning, and the run goes on.

Everything runs in this process (no interpreter start per run); spawned
workers would run without the fault injection, so train.py decodes with
--decode-jobs 1 and evaluate.py scores with --jobs 1. A run costs from 0.3 s
(data.py) to several seconds (train.py), twice with its rerun, so CI runs a
fixed sample of k per command (Command.sample: the first and the last
operation and a few drawn with a fixed seed), the error number rotating with
k. For the whole hunt (minutes for data.py, hours for train.py on 2 cores):

    FAULTS=k pytest -q tests/test_faults.py      # every k, the error number rotating with k
    FAULTS=all pytest -q tests/test_faults.py    # every k with every error number
    FAULTS=30 pytest -q tests/test_faults.py     # 30 k per command, drawn with a fixed seed
    FAULTS_LOG=faults.jsonl ...                  # and each finding written there as it comes
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pytest
import soundfile as sf
import torch

import data
import evaluate
import fault_checks
import faults
import inference
import toy_set
import train
from conftest import SHORT_TEST_SONGS, TINY_TOY, built_toy_set, noisy_song

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 2
TRAIN_FLAGS = ["--channels", "4", "8", "--batch-size", "4", "--samples-per-track", "2", "--epochs", str(EPOCHS),
               "--quiet", "--figure-every", "1", "--cpu", "--decode-jobs", "1"]
# train.py's songs: the tiny toy set at the model's own rate, 8192 Hz, so that building the cache spends no time
# resampling (a second per song on a loaded 2-core machine), and without test songs, which training never reads.
TRAIN_TOY = dict(TINY_TOY, sample_rate=8192, n_test=0)
DATA_TOY = dict(TINY_TOY, n_train=2, n_test=1, seconds=2.0, sample_rate=8000)  # what python data.py builds here


@dataclass
class Command:
    """One command under fault injection."""

    name: str
    script: str  # for the subprocess tests (closed and broken stdout)
    main: object
    prepare: object  # prepare(ws) -> argv: the command's inputs copied into the fresh folder ws
    inputs: tuple  # the names in ws the command reads and must leave as they are
    complete: object = None  # complete(ws) -> [problem]: what a finished run must have left
    resume: bool = False  # retyped with --resume where a checkpoint was left (train.py)
    sample: int = None  # how many k CI runs (None: every k)
    reports: str = None  # a pattern of the paths whose writes only report the work (see report_policy)


def train_command(train_root):
    def prepare(ws):
        fault_checks.copy_tree(train_root, ws / "musdb")
        return ["--root", str(ws / "musdb"), "--cache-dir", str(ws / "cache"), "--save-dir", str(ws / "ckpt"),
                *TRAIN_FLAGS]
    return Command("train", "train.py", train.main, prepare, ("musdb",), trained_fully, resume=True, sample=1,
                   reports=r"/ckpt/.*(?<!\.pth)$")  # everything train.py writes there but checkpoints


def trained_fully(ws):
    """A finished run's state: last_model.pth and final_model.pth at the last epoch, history.csv with every
    epoch."""
    from checkpoints import load_checkpoint

    problems = []
    for name in ("last_model.pth", "final_model.pth"):
        path = ws / "ckpt" / name
        epoch = load_checkpoint(str(path))["epoch"] if path.is_file() else None
        if epoch != EPOCHS:
            problems.append(f"{name} holds epoch {epoch}, not {EPOCHS}")
    history = ws / "ckpt" / "history.csv"
    epochs = [row["epoch"] for row in csv.DictReader(history.read_text().splitlines())] if history.is_file() else []
    if epochs != [str(e) for e in range(1, EPOCHS + 1)]:
        problems.append(f"history.csv lists epochs {epochs}")
    return problems


def inference_command(songs_folder, checkpoint):
    def prepare(ws):
        fault_checks.copy_tree(songs_folder, ws / "songs")
        shutil.copy(checkpoint, ws / "model.pth")
        return [str(ws / "songs"), "--checkpoint", str(ws / "model.pth"), "--out-dir", str(ws / "out"), "--cpu"]
    return Command("inference", "inference.py", inference.main, prepare, ("songs", "model.pth"), sample=2)


def evaluate_command(eval_root, checkpoint):
    def prepare(ws):
        fault_checks.copy_tree(eval_root, ws / "musdb")
        shutil.copy(checkpoint, ws / "model.pth")
        return ["--root", str(ws / "musdb"), "--checkpoint", str(ws / "model.pth"), "--out", str(ws / "scores.json"),
                "--estimates-dir", str(ws / "estimates"), "--cache-dir", str(ws / "cache"), "--jobs", "1", "--cpu"]
    return Command("evaluate", "evaluate.py", evaluate.main, prepare, ("musdb", "model.pth"), scored_fully, sample=1)


def scored_fully(ws):
    """A finished evaluation: scores.json holds every song."""
    try:
        scored = json.loads((ws / "scores.json").read_text())["songs_scored"]
    except (OSError, ValueError, KeyError) as err:
        return [f"scores.json unreadable: {err}"]
    return [] if scored == SHORT_TEST_SONGS else [f"scores.json holds {scored} songs, not {SHORT_TEST_SONGS}"]


def data_command(monkeypatch):
    """python data.py with no --root: the toy set is built under the workspace (songs' defaults pointed there)."""
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    monkeypatch.setattr(toy_set, "TOY_SETTINGS", DATA_TOY)
    monkeypatch.setattr(toy_set.build_toy_musdb, "__defaults__", (DATA_TOY, False))

    def prepare(ws):
        monkeypatch.setattr(toy_set.ensure_toy_musdb, "__defaults__", (str(ws / "toy_musdb"), False))
        return ["--cache-dir", str(ws / "cache")]
    return Command("data", "data.py", data.main, prepare, (), sample=8)


# --------------------------------------------------------------------------
# Fixtures: the inputs, built once
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def train_root(tmp_path_factory):
    return built_toy_set(tmp_path_factory, "train", TRAIN_TOY)


@pytest.fixture(scope="module")
def three_songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("three_songs")
    for i in range(3):
        sf.write(folder / f"song {i}.wav", noisy_song(1.5, 8000, 2, seed=i), 8000, subtype="PCM_16")
    return folder


@pytest.fixture
def command(request, train_root, three_songs, short_test_root, tiny_checkpoint, monkeypatch):
    make = {"train": lambda: train_command(train_root),
            "inference": lambda: inference_command(three_songs, tiny_checkpoint),
            "evaluate": lambda: evaluate_command(short_test_root, tiny_checkpoint),
            "data": lambda: data_command(monkeypatch)}
    return make[request.param]()


COMMANDS = ["data", "inference", "evaluate", "train"]


# --------------------------------------------------------------------------
# Running one command in one workspace
# --------------------------------------------------------------------------

def workspace(tmp_path, name):
    """A fresh folder for one run, with its own temporary folder: a file the command leaves in $TMPDIR
    is then one of its outputs, seen by the checks."""
    ws = tmp_path / name
    (ws / "tmp").mkdir(parents=True)
    return ws


def run_in(command, ws, argv, injector, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(tempfile, "tempdir", str(ws / "tmp"))
        m.chdir(ws)  # a relative default (outputs/, checkpoints/) lands in the workspace
        try:
            return fault_checks.run_main(command.main, argv, injector)
        finally:
            plt.close("all")  # a figure a failed run left open would stay for the rest of the session


def outputs_of(command, ws):
    return [str(ws / name) for name in sorted(os.listdir(ws)) if name not in command.inputs]


def rerun_argv(command, ws, argv):
    """The command as a user would type it again: train.py with --resume where a checkpoint was left (a
    temporary .tmp-*.pth is none)."""
    if command.resume and (ws / "ckpt").is_dir() and any(name.endswith(".pth") and not name.startswith(".")
                                                         for name in os.listdir(ws / "ckpt")):
        return [*argv, "--resume"]
    return argv


def report_policy(command, result):
    """A write that only reports the work (TensorBoard, history.csv, loss_curve.png), failing once (EACCES,
    EIO: the disk still works), is a warning and the run goes on (STYLE.md, "Two kinds of writes"): exit 0
    with a warning: line. Failing for good (ENOSPC, EROFS), the next checkpoint fails too, and one error
    line is right."""
    failed = result.injector.first_failed
    if not command.reports or not failed or result.injector.errno not in (faults.errnos.EACCES, faults.errnos.EIO):
        return []
    if re.search(command.reports, failed.path) and (result.code != 0 or "warning:" not in result.stderr):
        return [f"a report's write failed once and the run ended (exit {result.code}) instead of a warning"]
    return []


def warned_about(problem, result):
    """True if `problem` (a complete() line, which starts with a file's name) is about a report the run said it
    could not write: a warning at the last epoch leaves that report stale, and the rerun writes it again (it is
    checked without this excuse)."""
    name = problem.split()[0]
    return any(line.startswith("warning: could not write") and name in line for line in result.stderr.splitlines())


def check_rerun(command, ws, result, baseline, before, excused=frozenset()):
    """The rerun without faults: exit 0, warnings only, every output whole, the clean run's outputs, a
    complete result, the inputs unchanged (`excused`: fault_checks.check_outputs)."""
    problems = [] if result.code == 0 else [f"exit {result.code}: {fault_checks.last_line(result.stderr)}"]
    problems += fault_checks.check_run(result, baseline, outputs_of(command, ws), str(ws), before,
                                 [str(ws / name) for name in command.inputs], excused)
    if result.code == 0 and command.complete:
        problems += command.complete(ws)
    return problems


CLEAN = {}  # command name -> (the output names a clean run leaves, the operations it counted): run once


def clean_run(command, tmp_path, monkeypatch):
    """(output names, operations) of a clean run of `command`, which must succeed with every output whole,
    warnings only, and a complete result. Run once per command, for both tests."""
    if command.name not in CLEAN:
        ws = workspace(tmp_path, "clean")
        argv = command.prepare(ws)
        counting = faults.Injector()
        clean = run_in(command, ws, argv, counting, monkeypatch)
        assert clean.code == 0 and not fault_checks.stream_problems(clean, True), \
            f"the clean run of {command.name} fails: {clean.stderr[-2000:]} {clean.tracebacks}"
        assert not fault_checks.check_outputs(outputs_of(command, ws), str(ws))
        assert not command.complete or not command.complete(ws), command.complete(ws)
        CLEAN[command.name] = fault_checks.output_names(outputs_of(command, ws), str(ws)), counting.operations
        shutil.rmtree(ws)
    return CLEAN[command.name]


def explore(command, tmp_path, monkeypatch):
    """Run `command` once per planned (k, errno), each in a fresh workspace and followed by a rerun
    without faults; returns (operations counted, runs, findings, seconds)."""
    started = time.time()
    baseline, operations = clean_run(command, tmp_path, monkeypatch)
    findings, runs = [], fault_checks.plan(len(operations), command.sample)
    for k, errno in runs:
        ws = workspace(tmp_path, f"k{k}-{faults.errnos.errorcode[errno]}")
        argv = command.prepare(ws)
        inputs = [str(ws / name) for name in command.inputs]
        before = fault_checks.checksums(inputs)
        injector = faults.Injector(fail_at=k, errno=errno)
        result = run_in(command, ws, argv, injector, monkeypatch)
        problems = fault_checks.check_run(result, baseline, outputs_of(command, ws), str(ws), before, inputs)
        problems += report_policy(command, result)
        if result.code == 0 and command.complete:
            problems += [p for p in command.complete(ws) if not warned_about(p, result)]
        again = run_in(command, ws, rerun_argv(command, ws, argv), faults.Injector(), monkeypatch)
        rerun_problems = check_rerun(command, ws, again, baseline, before, injector.refused_removals())
        if problems or rerun_problems:
            failed = injector.first_failed or faults.Operation(k, "(nothing failed)", "", "MainThread")
            findings.append(fault_checks.Finding(command.name, k, errno, failed, problems, rerun_problems))
            fault_checks.log(findings[-1])
        shutil.rmtree(ws, ignore_errors=True)
    return len(operations), len(runs), findings, time.time() - started


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS, indirect=True)
def test_every_write_failing_in_turn_ends_well(command, tmp_path, monkeypatch):
    """Each planned k: success with whole outputs, or one error line; nothing half-written, no input
    changed; and the command run again completes with the same outputs."""
    torch.manual_seed(0)
    operations, runs, findings, seconds = explore(command, tmp_path, monkeypatch)
    summary = fault_checks.report(command.name, operations, runs, findings, seconds)
    fault_checks.SUMMARY.append(summary)
    assert not findings, summary


def data_summary_command(toy_root):
    """python data.py --root: a summary of a copy of the toy set (in a subprocess data.py cannot be pointed at
    a toy set of the test's own: without --root it builds the default one, in the project's data/ folder)."""
    def prepare(ws):
        fault_checks.copy_tree(toy_root, ws / "musdb")
        return ["--root", str(ws / "musdb"), "--cache-dir", str(ws / "cache")]
    return Command("data --root", "data.py", data.main, prepare, ("musdb",))


@pytest.mark.slow
@pytest.mark.parametrize("command, stdout", [(name, "broken") for name in COMMANDS] + [("train", "closed"),
                                                                                      ("evaluate", "closed")],
                         indirect=["command"])  # inference.py and data.py with >&-: tests/test_cli.py
def test_a_closed_or_broken_stdout_is_the_reader_leaving(command, stdout, tmp_path, toy_root, monkeypatch):
    """`python SCRIPT ... >&-` (fd 1 closed) and `python SCRIPT ... | head -0` (a pipe whose reader has gone
    before the first line): whatever the exit code (the reader left: stopping is as right as going on), no
    traceback and only warning: / error: lines on stderr, none of them blaming the user's files or folders
    for it, every output already written whole, no input changed; then the same command with a working
    stdout completes, with the outputs of a clean run."""
    if command.name == "data":
        command = data_summary_command(toy_root)
    baseline, _ = clean_run(command, tmp_path, monkeypatch)
    ws = workspace(tmp_path, stdout)
    argv = command.prepare(ws)
    inputs = [str(ws / name) for name in command.inputs]
    before = fault_checks.checksums(inputs)
    args = [sys.executable, os.path.join(PROJECT, command.script), *argv]
    env = dict(os.environ, TMPDIR=str(ws / "tmp"))
    if stdout == "closed":
        done = subprocess.run(args, cwd=ws, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1))
    else:
        reader, writer = os.pipe()
        os.close(reader)
        try:
            done = subprocess.run(args, cwd=ws, env=env, stdout=writer, stderr=subprocess.PIPE, text=True)
        finally:
            os.close(writer)
    # An error line is allowed, whatever the exit; so is the line that says where an interrupted command stopped.
    stderr = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("Interrupted"))
    result = fault_checks.Result(done.returncode, "", stderr)
    problems = [p for p in fault_checks.stream_problems(result, succeeded=True)
                if not p.startswith("exit 0 with an error line")]
    problems += [f"an error line blames a file for the reader leaving @ {line}" for line in done.stderr.splitlines()
                 if line.startswith("error:") and ("Broken pipe" in line or str(ws) in line)]
    problems += fault_checks.check_outputs(outputs_of(command, ws), str(ws))
    if fault_checks.checksums(inputs) != before:
        problems.append("an input changed")
    again = run_in(command, ws, rerun_argv(command, ws, argv), faults.Injector(), monkeypatch)
    problems += [f"rerun: {p}" for p in check_rerun(command, ws, again, baseline, before)]
    assert not problems, f"{command.name}, stdout {stdout} (exit {done.returncode}): {problems}\n{done.stderr[-3000:]}"


def test_the_injector_sees_every_kind_of_write_and_fails_the_one_asked(tmp_path):
    """The harness itself: each kind of write-side operation is counted once in order, and the k-th fails
    (with the error its library would raise), whichever k; pytest's own writes, outside run_main, are not
    counted; a failing close loses what was never flushed."""
    import numpy as np

    def command(argv):
        with open(tmp_path / "a.txt", "w") as f:  # open, first write, close with the write pending
            f.write("text")
        os.mkdir(tmp_path / "folder")
        os.replace(tmp_path / "a.txt", tmp_path / "folder" / "b.txt")
        sf.write(tmp_path / "c.wav", np.zeros(100), 8000)  # SoundFile(w), SoundFile.write, SoundFile.close
        with open(tmp_path / "d.pth", "wb") as f:  # open, then torch's writes through the file, flush, fsync
            torch.save({"x": torch.zeros(3)}, f)
            f.flush()
            os.fsync(f.fileno())
        with tempfile.TemporaryDirectory(dir=tmp_path):  # os.mkdir, then os.rmdir
            pass
        shutil.rmtree(tmp_path / "folder")  # os.unlink, os.rmdir
        sys.exit(0)

    (tmp_path / "outside.txt").write_text("not counted")
    counting = faults.Injector()
    assert fault_checks.run_main(command, [], counting).code == 0
    names = [op.name for op in counting.operations]
    assert names == ["open(w)", "write", "close", "os.mkdir", "os.replace", "SoundFile(w)", "SoundFile.write",
                     "SoundFile.close", "open(wb)", "write", "flush", "os.fsync", "os.mkdir", "os.rmdir",
                     "os.unlink", "os.rmdir"], names
    for k, op in enumerate(counting.operations, 1):
        shutil.rmtree(tmp_path)
        tmp_path.mkdir()
        result = fault_checks.run_main(command, [], faults.Injector(fail_at=k, errno=faults.errnos.EIO))
        assert result.injector.first_failed.name == op.name and result.code == 1, (k, op)
        expected = "LibsndfileError" if op.name.startswith("SoundFile") else "OSError"
        assert result.tracebacks[0].summary.startswith(expected), (k, op, result.tracebacks[0].summary)
        if k == 3:  # the close failed: what was never flushed never reached the disk
            assert (tmp_path / "a.txt").read_text() == ""
