"""Fault injection: the k-th write-side file system operation of a command fails, for every k.

Why: SQLite's "anomaly tests" fail every I/O call in turn and then check that
nothing is corrupt; the cases a person thinks of (a full disk while saving a
checkpoint) are a handful of the hundreds of places where a write can fail.
This module does the same for the project's commands, run in-process:

    counting = Injector()                       # fails nothing, counts
    baseline = run_main(train.main, argv, counting)
    for k in range(1, len(counting.operations) + 1):
        result = run_main(train.main, argv, Injector(fail_at=k, errno=ERRNOS[k % 4]))
        ... check_run(result, ...) ...

What counts as a write-side operation, and why these: everything through
which a Python program changes a file system, caught where Python (or a
library's Python entry) hands it to the system, so that TensorBoard's,
matplotlib's, numpy's, PIL's and the caches' writes count as much as the
project's own:

- open() / io.open in a writing mode (w, a, x, +), and os.open with O_WRONLY,
  O_RDWR, O_CREAT, O_TRUNC or O_APPEND (tempfile.mkstemp goes through it);
- on a file opened for writing: the first write after the open or a flush
  (a buffered file reaches the disk in large pieces: where a failure leaves
  an empty or a partial file is covered by failing the first write and the
  close), an explicit flush with writes pending, and the close with writes
  pending (a buffered file's last data is written there); os.fsync;
- os.replace, os.rename, os.mkdir (os.makedirs, tempfile.mkdtemp and
  TemporaryDirectory go through it), os.unlink, os.remove, os.rmdir
  (shutil.rmtree and TemporaryDirectory's clean-up go through them, one
  operation per file), os.chmod, os.truncate, os.ftruncate, os.symlink,
  os.link;
- soundfile.SoundFile opened for writing on a path (and sf.write, which opens
  one): its open, first write and close (libsndfile writes the header there),
  since libsndfile writes in C, past Python's open. These fail as libsndfile
  does, with soundfile.LibsndfileError 2 ("System error."), a RuntimeError
  without an error number (seen with a file size limit, RLIMIT_FSIZE: a
  write past it, and its close, raise that);
- torch.save given a path (it writes in C: it fails with torch's
  RuntimeError); given a file object, the file's own writes count, and their
  OSError comes through torch.save as it is. (A short write, which a full
  disk or a file size limit can give before any error, torch reports as
  RuntimeError "unexpected pos"; files.disk_is_full knows it.)

One difference from the real thing remains: np.save writes to a real file
with tofile() in C, whose failure is an OSError without an error number
("N requested and M written"); through the watched file it writes with
.write(), and fails with the injected error number.

An operation that would not change anything is not counted (os.mkdir of a
folder that exists, os.unlink of a name that does not): the system answers
it with EEXIST or ENOENT before any write could fail. Raw writes on file
descriptors (os.write) are not counted: in these commands they are pipes
(multiprocessing, subprocess), not files. Python's own .pyc writes go through
the `posix` module, not `os`, and are not counted.

How each error number fails, as the situation it stands for would:

- ENOSPC, the disk is full from the k-th operation on: it and every later
  operation that needs room fail; removing and renaming go on working (they
  give room back or need none), and shutil.disk_usage says 0 bytes free
  (files.disk_is_full measures it, for the libraries whose failures carry no
  error number);
- EROFS, the disk becomes read-only at the k-th operation: it and every later
  write-side operation fail, removals too (a half-written file may then be
  left: the check accepts one whose removal was refused, see check_outputs);
- EACCES and EIO, one file refused, one I/O error: the k-th operation alone fails.

The OSError raised carries the error number, its text and the path, as the
system's would (OSError(errno.EACCES, ...) is a PermissionError).
"""

import builtins
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
import torch

ERRNOS = (errnos.ENOSPC, errnos.EROFS, errnos.EACCES, errnos.EIO)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every complete PNG
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
REAL_TRUNCATE, REAL_FSTAT = os.truncate, os.fstat  # the harness's own, never counted


@dataclass(frozen=True)
class Operation:
    """One write-side operation, as counted: its number in the run, what it was, on which path, in which thread."""

    index: int
    name: str  # "open(w)", "write", "close", "os.replace", "SoundFile(w)", ...
    path: str
    thread: str

    def __str__(self):
        where = "" if self.thread == "MainThread" else f" [thread {self.thread}]"
        return f"#{self.index} {self.name} {self.path}{where}"


class Injector:
    """Counts the write-side operations of a run and fails them as `fail_at` and `errno` say.

    fail_at=None: count only. Otherwise the operation numbered `fail_at`
    (from 1) fails with `errno`, and later ones too where the error number
    stands for a lasting state (see the module docstring). Thread-safe: a
    TensorBoard writer thread counts in the same sequence as the main thread.
    """

    def __init__(self, fail_at=None, errno=errnos.EIO):
        self.fail_at, self.errno = fail_at, errno
        self.operations = []  # every Operation counted, in order
        self.failed = []  # the Operations made to fail
        self._lock = threading.Lock()

    def hit(self, name, path, roomless=False, error=None):
        """Count one operation on `path` (`roomless`: it needs no room, a full disk allows it: a removal,
        a rename, a chmod); raise if it fails: an OSError, or what error(errno, path) makes (a library
        that reports failures its own way)."""
        with self._lock:
            op = Operation(len(self.operations) + 1, name, printable(path), threading.current_thread().name)
            self.operations.append(op)
            fails = self._fails(op.index, roomless)
            if fails:
                self.failed.append(op)
        if fails:
            if error is not None:
                raise error(self.errno, path)
            raise OSError(self.errno, os.strerror(self.errno), path if isinstance(path, (str, bytes)) else None)

    def _fails(self, index, roomless):
        if self.fail_at is None or index < self.fail_at:
            return False
        if self.errno == errnos.ENOSPC:  # full from fail_at on, for whatever needs room
            return not roomless
        return index == self.fail_at or self.errno == errnos.EROFS  # EROFS lasts; EACCES and EIO strike once

    @property
    def disk_full(self):
        """True once an ENOSPC fault has struck: from then on the disk has no room (shutil.disk_usage says so)."""
        return self.errno == errnos.ENOSPC and bool(self.failed)

    @property
    def first_failed(self):
        return self.failed[0] if self.failed else None

    def refused_removals(self):
        """The paths whose removal failed (EROFS): a half-written file left there could not be helped."""
        return {op.path for op in self.failed if op.name in ("os.unlink", "os.remove", "os.rmdir")}


def printable(path, dir_fd=None):
    """`path` (str, bytes, PathLike, or a file descriptor) as text for a report; relative to `dir_fd` resolved."""
    if isinstance(path, int):
        return fd_path(path)
    text = os.fsdecode(os.fspath(path))
    if dir_fd is not None and not os.path.isabs(text):
        text = os.path.join(fd_path(dir_fd), text)
    return text


def fd_path(fd):
    """The path a file descriptor is open on (Linux's /proc), or 'fd N'."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd {fd}"


def _exists(path, dir_fd=None):
    try:
        os.lstat(path, dir_fd=dir_fd) if dir_fd is not None else os.lstat(path)
        return True
    except (OSError, TypeError, ValueError):
        return False


class WatchedFile:
    """A file opened for writing by Python, whose writes, flushes and close count as operations.

    A proxy, not a subclass: open() returns objects of several C types
    (TextIOWrapper, BufferedWriter, BufferedRandom, FileIO). Everything else
    is passed through. Only the first write after the open or a flush counts
    (see the module docstring), and a close only with writes pending. Code
    that tests `isinstance(f, io.BufferedWriter)` takes its generic path
    through .write (numpy's np.save does), which is what is wanted here: its
    writes are then counted.
    """

    def __init__(self, file, injector, path):
        self._file, self._injector, self._path, self._pending = file, injector, path, False
        self._durable = self._size()  # what is on disk for sure: the size at the open or the last flush

    def _size(self):
        try:
            return REAL_FSTAT(self._file.fileno()).st_size
        except (OSError, ValueError, AttributeError):
            return None

    def _written(self):
        if not self._pending:
            self._injector.hit("write", self._path)
            self._pending = True

    def write(self, data):
        self._written()
        return self._file.write(data)

    def writelines(self, lines):
        self._written()
        return self._file.writelines(lines)

    def truncate(self, *args):
        self._injector.hit("truncate", self._path)
        return self._file.truncate(*args)

    def flush(self):
        if self._pending:
            self._injector.hit("flush", self._path)
            self._pending = False
        done = self._file.flush()
        self._durable = self._size()
        return done

    def close(self):
        """Closed either way, as a failing close() is; if it fails, what was written since the last flush
        never reached the disk: the file is cut back to its size then (an empty file, if never flushed)."""
        pending, self._pending = self._pending and not self._file.closed, False
        self._file.close()
        if pending:
            try:
                self._injector.hit("close", self._path)
            except OSError:
                if self._durable is not None and isinstance(self._path, (str, bytes, os.PathLike)):
                    REAL_TRUNCATE(self._path, self._durable)
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        return iter(self._file)

    def __getattr__(self, name):
        return getattr(self._file, name)


@contextlib.contextmanager
def installed(injector):
    """Route every write-side operation (module docstring) through `injector` inside the block.

    The patches are installed only around the command, so pytest's own writes
    never count, and they are all taken back on the way out.
    """
    saved = []

    def patch(owner, name, replacement):
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    real_open = builtins.open

    def open_(file, mode="r", *args, **kwargs):
        writing = any(c in mode for c in "wax+")
        if writing and not isinstance(file, int):  # open(fd) only wraps a descriptor already open
            injector.hit(f"open({mode})", file)
        f = real_open(file, mode, *args, **kwargs)
        return WatchedFile(f, injector, file) if writing else f

    patch(builtins, "open", open_)
    patch(io, "open", open_)

    real = {name: getattr(os, name) for name in ("open", "replace", "rename", "mkdir", "unlink", "remove", "rmdir",
                                                 "chmod", "fsync", "truncate", "ftruncate", "symlink", "link")}

    def os_open(path, flags, *args, dir_fd=None, **kwargs):
        if flags & WRITE_FLAGS:
            injector.hit("os.open", printable(path, dir_fd))
        return real["open"](path, flags, *args, dir_fd=dir_fd, **kwargs)

    def moving(name):
        def move(src, dst, *args, **kwargs):  # a rename needs no room; a new link does
            injector.hit(f"os.{name}", f"{printable(src)} -> {printable(dst)}", roomless=name in ("replace", "rename"))
            return real[name](src, dst, *args, **kwargs)
        return move

    def os_mkdir(path, *args, dir_fd=None, **kwargs):
        if not _exists(path, dir_fd):
            injector.hit("os.mkdir", printable(path, dir_fd))
        return real["mkdir"](path, *args, dir_fd=dir_fd, **kwargs)

    def removing(name):
        def remove(path, *args, dir_fd=None, **kwargs):
            if _exists(path, dir_fd):
                injector.hit(f"os.{name}", printable(path, dir_fd), roomless=True)
            return real[name](path, *args, dir_fd=dir_fd, **kwargs)
        return remove

    def counted(name, roomless=False):
        def call(target, *args, **kwargs):
            injector.hit(f"os.{name}", printable(target), roomless=roomless)
            return real[name](target, *args, **kwargs)
        return call

    patch(os, "open", os_open)
    for name in ("replace", "rename", "symlink", "link"):
        patch(os, name, moving(name))
    patch(os, "mkdir", os_mkdir)
    for name in ("unlink", "remove", "rmdir"):
        patch(os, name, removing(name))
    patch(os, "chmod", counted("chmod", roomless=True))
    for name in ("fsync", "truncate", "ftruncate"):
        patch(os, name, counted(name))

    patch(soundfile, "SoundFile", watched_soundfile(soundfile.SoundFile, injector))

    real_save = torch.save

    def torch_save(obj, f, *args, **kwargs):
        if isinstance(f, (str, bytes, os.PathLike)):  # torch writes to a path in C, past open()
            injector.hit("torch.save", f, error=torch_error)
        return real_save(obj, f, *args, **kwargs)

    patch(torch, "save", torch_save)

    real_usage = shutil.disk_usage

    def disk_usage(path):  # a full disk has no free space: what files.disk_is_full measures
        usage = real_usage(path)
        return usage._replace(used=usage.total, free=0) if injector.disk_full else usage

    patch(shutil, "disk_usage", disk_usage)
    try:
        yield injector
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def watched_soundfile(base, injector):
    """soundfile.SoundFile whose writers on a path count their open, first write and close (libsndfile writes
    in C: what Python sees of it is this class)."""

    class WatchedSoundFile(base):
        def __init__(self, file, mode="r", *args, **kwargs):
            watched = any(c in mode for c in "wx+") and isinstance(file, (str, bytes, os.PathLike))
            if watched:
                injector.hit(f"SoundFile({mode})", file, error=libsndfile_error)
            super().__init__(file, mode, *args, **kwargs)
            self._watched, self._watched_name, self._pending = watched, file, False

        def _written(self):
            if getattr(self, "_watched", False) and not self._pending:
                injector.hit("SoundFile.write", self._watched_name, error=libsndfile_error)
                self._pending = True

        def write(self, data):
            self._written()
            return super().write(data)

        def buffer_write(self, data, dtype):
            self._written()
            return super().buffer_write(data, dtype)

        def close(self):
            """Closed first, then failed, as soundfile's own close raises after sf_close."""
            pending = getattr(self, "_pending", False) and not self.closed
            super().close()
            if pending:
                self._pending = False
                injector.hit("SoundFile.close", self._watched_name, error=libsndfile_error)

        def __del__(self):  # the garbage collector's close is not an operation of the command's sequence
            if getattr(self, "_file", None) is not None:
                base.close(self)

    return WatchedSoundFile


def libsndfile_error(errno, path):
    """What soundfile raises when libsndfile's write to `path` fails, whatever the system said: error 2."""
    return soundfile.LibsndfileError(2, prefix=f"Error writing {printable(path)!r}: ")


def torch_error(errno, path):
    """What torch.save raises when its C writer fails on a path."""
    return RuntimeError(f"[enforce fail at inline_container.cc] . unexpected pos (writing {printable(path)})")


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
