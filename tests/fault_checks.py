"""Running a command under fault injection (faults.py) and judging what it left: the checks, the plan of
which k to run, and the report of the findings grouped by cause.

A run is a script's main() in this process (run_main), its exit code, its
two streams and every traceback a user would see (escaped main(), in a
thread, unraisable). What it must leave: one closing "error:" line or
success, every output whole (damage reads each back as its user would), no
input changed, and on success the outputs of a clean run (check_run).
"""

import contextlib
import csv
import errno as errnos
import gc
import hashlib
import io
import json
import os
import re
import shutil
import sys
import threading
import traceback
from dataclasses import dataclass, field

import numpy as np
import soundfile

from faults import ERRNOS, Injector, Operation, installed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every complete PNG


# --------------------------------------------------------------------------
# Running a command in-process
# --------------------------------------------------------------------------

@dataclass
class Result:
    """What a run of a script's main() showed: its exit code, its two streams, and every traceback."""

    code: int
    stdout: str
    stderr: str
    tracebacks: list = field(default_factory=list)  # [Traceback]: escaped main(), in a thread, unraisable
    injector: Injector = None


@dataclass
class Traceback:
    """An exception a user would see printed as a traceback, and the project's code it came through."""

    kind: str  # "escaped main()", "in a thread", "unraisable"
    text: str  # the whole traceback
    summary: str  # "OSError via songs.py build_toy_musdb @ [Errno 30] Read-only file system: '...'"

    @classmethod
    def of(cls, kind, exc_type, exc_value, exc_traceback):
        frames = traceback.extract_tb(exc_traceback)
        ours = [f for f in frames if os.path.dirname(os.path.abspath(f.filename)) == PROJECT]
        site = f" via {os.path.basename(ours[-1].filename)} {ours[-1].name}" if ours else ""
        name = "OSError" if issubclass(exc_type, OSError) else exc_type.__name__
        return cls(kind, "".join(traceback.format_exception(exc_type, exc_value, exc_traceback)),
                   f"{name}{site} @ {str(exc_value)[:200]}")


PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the scripts' folder


def run_main(main, argv, injector=None):
    """Run main(argv) as `python SCRIPT argv` would, in this process, with `injector` installed.

    A SystemExit gives the exit code (a message: printed to stderr, code 1,
    as the interpreter does); any other exception is a traceback. Uncaught
    exceptions of threads (threading.excepthook) and those Python can only
    print (sys.unraisablehook: in __del__, in the garbage collector) are
    tracebacks too: each would be printed on a terminal.
    """
    injector = injector or Injector()
    out, err, tracebacks = io.StringIO(), io.StringIO(), []

    def keep(kind):
        def hook(args):
            tracebacks.append(Traceback.of(kind, args.exc_type, args.exc_value, args.exc_traceback))
        return hook

    hooks = threading.excepthook, sys.unraisablehook
    threading.excepthook, sys.unraisablehook = keep("in a thread"), keep("unraisable")
    code = 0
    gc.freeze()  # what exists now is set aside: the collection below then looks at the run's objects only
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), installed(injector):
            try:
                main(list(argv))
            except SystemExit as stop:
                code = stop.code
            except BaseException:  # noqa: BLE001 (what a user would see as a traceback)
                tracebacks.append(Traceback.of("escaped main()", *sys.exc_info()))
                code = 1
            finally:
                gc.collect()  # a file dropped unclosed is closed now, inside the run, not in the next one
        if isinstance(code, str):
            err.write(code + "\n")
            code = 1
    finally:
        gc.unfreeze()
        threading.excepthook, sys.unraisablehook = hooks
    return Result(code or 0, out.getvalue(), err.getvalue(), tracebacks, injector)


# --------------------------------------------------------------------------
# What a run must leave
# --------------------------------------------------------------------------

def stream_problems(result, succeeded):
    """What is wrong with a run's console output: a traceback anywhere, or a stderr that is not the one-line
    shape.

    The shape: on success, stderr holds only "warning:" lines (a report that
    could not be written is a warning, and the run goes on); on failure, it
    ends with exactly one "error:" line, after any number of "warning:" lines.
    Each warning is one line of its own, so a user reads every line as a
    sentence, and the last one says why the command stopped. Anything else
    (a traceback, "Exception ignored in", a library's message) is a problem.
    """
    problems = [f"traceback ({t.kind}): {t.summary}" for t in result.tracebacks]
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if "Traceback (most recent call last)" in text or "Exception ignored" in text:
            problems.append(f"traceback printed on {name} @ {last_line(text)}")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    others = [line for line in lines if not line.startswith(("error:", "warning:"))]
    if others:
        problems.append(f"stderr line that is neither warning: nor error: @ {others[0][:200]!r}")
    if any(re.search(r"\bb'", line) for line in errors):  # a path shown as Python's bytes literal
        problems.append(f"an error line shows a path as bytes @ {errors[0][:200]!r}")
    if succeeded and errors:
        problems.append(f"exit 0 with an error line @ {errors[0][:200]!r}")
    if not succeeded and (len(errors) != 1 or not lines or not lines[-1].startswith("error:")):
        problems.append(f"exit {result.code} without exactly one closing error: line @ stderr: {lines[-3:]!r}")
    return problems


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def damage(path):
    """Why the file at `path` is not whole (a reason), or None.

    Each kind of output is read back the way its user would read it:
    checkpoints with checkpoints.load_checkpoint, audio with soundfile, JSON,
    CSV (every row as long as the header), NumPy arrays, and a PNG from its
    signature to its closing IEND chunk. A `.tmp-` file is a write that was
    never finished.
    """
    name = os.path.basename(path)
    if name.startswith(".tmp-"):
        return "a temporary file left behind"
    try:
        if name.endswith(".pth"):
            from checkpoints import load_checkpoint

            load_checkpoint(path)
        elif name.endswith((".wav", ".flac")):
            audio, _ = soundfile.read(path)
            if audio.size == 0:
                return "audio without samples"
        elif name.endswith(".json"):
            with open(path) as f:
                json.load(f)
        elif name.endswith(".csv"):
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            if not rows or any(len(row) != len(rows[0]) for row in rows):
                return "a CSV file with no header or ragged rows"
        elif name.endswith(".npy"):
            np.load(path)
        elif name.endswith(".png"):
            with open(path, "rb") as f:
                data = f.read()
            if not data.startswith(PNG_SIGNATURE) or not data.endswith(PNG_END):
                return "a PNG without its signature or its end"
    except Exception as err:  # noqa: BLE001 (whatever reading it raises, it is not whole)
        return f"{type(err).__name__}: {str(err)[:150]}"
    return None


def files_under(paths):
    """Every file under the given files and folders (the folders walked), as absolute paths."""
    found = []
    for top in paths:
        if os.path.isfile(top) or os.path.islink(top):
            found.append(top)
        for parent, _, names in os.walk(top):
            found += [os.path.join(parent, name) for name in names]
    return sorted(found)


def checksums(paths):
    """{path: sha1} of every file under `paths`: a changed, added or removed input shows as a difference."""
    sums = {}
    for path in files_under(paths):
        with open(path, "rb") as f:
            sums[path] = hashlib.sha1(f.read()).hexdigest()
    return sums


# Names that differ from run to run by design: a TensorBoard run folder's time, an event file's time, host and
# process, a cache file's key (it holds the input files' paths and times, other in every workspace).
VARYING = ((re.compile(r"\d{8}_\d{6}"), "<time>"), (re.compile(r"events\.out\.tfevents\..*"), "events.out.tfevents"),
           (re.compile(r"-[0-9a-f]{16}\.(npy|json)$"), r"-<key>.\1"))


def output_names(paths, base):
    """The set of output files under `paths`, relative to `base`, with the names that vary by design made
    equal (VARYING): what "the same outputs" compares."""
    names = set()
    for path in files_under(paths):
        name = os.path.relpath(path, base)
        for pattern, replacement in VARYING:
            name = pattern.sub(replacement, name)
        names.add(name)
    return names


def check_outputs(outputs, base, injector=None, excused=frozenset()):
    """Problems with the files under `outputs`: each file not whole (damage). A file whose removal the
    injector refused (a read-only disk) is accepted: nothing could have removed it then. So is one in
    `excused`, what the faulted run's disk refused to remove, in the rerun: a hidden temporary name, never
    read; sweeping such leftovers would need to know that no other process is still writing them."""
    refused = (injector.refused_removals() if injector else set()) | set(excused)
    problems = []
    for path in files_under(outputs):
        reason = damage(path)
        if reason and path not in refused:
            problems.append(f"not whole: {reason} ({kind_of(path)}) @ {os.path.relpath(path, base)}")
    return problems


def check_run(result, succeeded_names, outputs, base, inputs_before, inputs, excused=frozenset()):
    """Every problem with one faulted run (a list of one-line strings; empty: the run behaved).

    `succeeded_names`: the output names a clean run leaves (output_names),
    which a run that exits 0 must leave too. `inputs_before`: checksums of
    `inputs` before the run. `excused`: see check_outputs.
    """
    ok = result.code == 0
    problems = stream_problems(result, ok)
    problems += check_outputs(outputs, base, result.injector, excused)
    if checksums(inputs) != inputs_before:
        problems.append("an input changed @ " + describe_change(inputs_before, checksums(inputs), base))
    if ok:
        names = output_names(outputs, base)
        left = output_names(list(excused), base)  # leftovers that may stay beside the outputs
        if names - left != succeeded_names - left or not succeeded_names <= names:
            difference = describe_sets(names, succeeded_names)
            problems.append(f"exit 0 but the outputs differ from a clean run's @ {difference}")
    return problems


def kind_of(path):
    """A file's kind for grouping: its extension, or what a temporary file was to become."""
    name = os.path.basename(path)
    if name.startswith(".tmp-"):
        return "temporary " + (os.path.splitext(name)[1] or "file")
    return os.path.splitext(name)[1] or name


def describe_change(before, after, base):
    changed = sorted(set(before) ^ set(after) | {p for p in before if p in after and before[p] != after[p]})
    return ", ".join(os.path.relpath(p, base) for p in changed[:3])


def describe_sets(got, wanted):
    extra, missing = sorted(got - wanted), sorted(wanted - got)
    return "; ".join(part for part in (f"extra {extra[:3]}" if extra else "",
                                       f"missing {missing[:3]}" if missing else "") if part)


# --------------------------------------------------------------------------
# Which k to run, and the report
# --------------------------------------------------------------------------

def plan(count, sample=None, seed=0):
    """[(k, errno)] to run for a command with `count` operations, as the FAULTS environment variable says.

    FAULTS=all: every k, each with every error number (ERRNOS). FAULTS=k:
    every k, the error number rotating with k (ERRNOS[k % 4]: neighbouring
    operations, often the steps of one file's write, get different ones).
    Unset (CI): `sample` k (every k if None) drawn with a fixed seed, the
    same in every run (from 3 on, the first and the last operation among
    them), the error number rotating. FAULTS=N: N k drawn so, per command;
    FAULTS=51,58: those k.
    """
    ks = list(range(1, count + 1))
    mode = os.environ.get("FAULTS", "").lower()
    if mode == "all":
        return [(k, e) for k in ks for e in ERRNOS]
    if mode.isdigit():
        sample = int(mode)
    elif re.fullmatch(r"\d+(,\d+)+", mode):  # FAULTS=51,58: these k, to see a finding again
        return [(k, ERRNOS[k % len(ERRNOS)]) for k in map(int, mode.split(",")) if k <= count]
    if mode != "k" and sample is not None and sample < count:
        ends = [1, count] if sample >= 3 else []
        inner = np.random.default_rng(seed).choice(ks[1:-1], size=sample - len(ends), replace=False).tolist()
        ks = sorted({*ends, *inner})
    return [(k, ERRNOS[k % len(ERRNOS)]) for k in ks]


def log(finding):
    """Append the finding to the file FAULTS_LOG names, if any, as a line of JSON: a long FAULTS=all run
    shows its findings as they come, and they can be regrouped afterwards."""
    if os.environ.get("FAULTS_LOG"):
        with open(os.environ["FAULTS_LOG"], "a") as f:
            f.write(json.dumps({"command": finding.command, "k": finding.k, "errno": errnos.errorcode[finding.errno],
                                "operation": str(finding.operation), "problems": finding.problems,
                                "rerun_problems": finding.rerun_problems}) + "\n")


@dataclass
class Finding:
    """A faulted run that misbehaved: the command, k, the operation failed, the error number, what went wrong."""

    command: str
    k: int
    errno: int
    operation: Operation
    problems: list  # of the faulted run
    rerun_problems: list  # of the rerun without faults

    def line(self):
        what = "; ".join(self.problems + [f"rerun: {p}" for p in self.rerun_problems])
        return f"{self.command} k={self.k} {errnos.errorcode[self.errno]} at {self.operation}: {what}"


def causes(finding):
    """The keys of the causes a finding shows, one per problem: the problem with error texts, quoted names,
    paths and numbers taken out (what is left names the kind of problem and the project's function it came
    through). A missing error line is left out where a traceback already explains it."""
    problems = finding.problems + [f"rerun: {p}" for p in finding.rerun_problems]
    if any("traceback" in p for p in finding.problems):
        problems = [p for p in problems if "without exactly one closing error" not in p]
    return list(dict.fromkeys(normalized(p) for p in problems))


def normalized(problem):
    """The problem's kind: what comes before " @ " (the place: a path, a message), with paths and numbers
    made equal."""
    text = problem.split(" @ ")[0]
    text = re.sub(r"/[^\s:'\"),]*", "PATH", text)
    text = re.sub(r"\d+", "N", text)
    return text[:200]


def report(command, operations, runs, findings, seconds):
    """The summary of one command: its operations, runs, and the findings grouped by cause (a run with
    several problems counts in each of their groups), with one example each."""
    lines = [f"{command}: {operations} write-side operations, {runs} faulted runs in {seconds:.0f} s, "
             f"{len(findings)} misbehaved"]
    groups = {}
    for finding in findings:
        for key in causes(finding):
            groups.setdefault(key, []).append(finding)
    for key, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        ks = ", ".join(f"{f.k}/{errnos.errorcode[f.errno]}" for f in members[:12])
        lines.append(f"  [{len(members)} runs: k {ks}{' ...' if len(members) > 12 else ''}] {key}")
        lines.append(f"      e.g. {members[0].line()[:600]}")
    return "\n".join(lines)


SUMMARY = []  # the report of each command tested, printed at the end of the session (conftest.py)


def copy_tree(src, dst):
    """A fresh copy of an input folder for one run."""
    shutil.copytree(src, dst, symlinks=True)
