"""Fault injection: the k-th write-side file system operation of a command fails, for every k.

Why: SQLite's "anomaly tests" fail every I/O call in turn and then check that
nothing is corrupt; the cases a person thinks of (a full disk while saving a
checkpoint) are a handful of the hundreds of places where a write can fail.
This module does the same for the project's commands, run in-process by
fault_checks.py, which also judges what each run left:

    counting = Injector()                       # fails nothing, counts
    baseline = fault_checks.run_main(train.main, argv, counting)
    for k in range(1, len(counting.operations) + 1):
        result = fault_checks.run_main(train.main, argv, Injector(fail_at=k, errno=ERRNOS[k % 4]))
        ... fault_checks.check_run(result, ...) ...

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
  left: the check accepts one whose removal was refused, see fault_checks.check_outputs);
- EACCES and EIO, one file refused, one I/O error: the k-th operation alone fails.

The OSError raised carries the error number, its text and the path, as the
system's would (OSError(errno.EACCES, ...) is a PermissionError).
"""

import builtins
import contextlib
import errno as errnos
import io
import os
import shutil
import threading
from dataclasses import dataclass

import soundfile
import torch

ERRNOS = (errnos.ENOSPC, errnos.EROFS, errnos.EACCES, errnos.EIO)
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
