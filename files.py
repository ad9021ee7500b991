"""Writing files so that a crash never leaves a half-written one.

Every file the project writes (checkpoints, feature caches, WAVs, figures,
CSV, JSON) goes through `atomic_path`, so a crash, Ctrl-C or `kill -9` never
leaves a truncated file under a final name, and an older file there survives
until the new one is complete.
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` (same extension); rename it to
    `path` when the block ends normally, delete it if the block fails.

    Every file the project writes goes through this (see the module docstring).
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        make_readable(tmp)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def make_readable(path, mode=0o666):
    """Give a file from mkstemp (mode 0600), or with mode=0o777 a folder from
    mkdtemp (0700), the permissions a plain open() or mkdir() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)
