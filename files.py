"""Files and folders: writing them so that a crash never leaves a half-written
one, the record beside a song's outputs, naming songs, MUSDB18's layout (its
stems, file names and validation songs, from musdb's own mus.yaml), and where
the project keeps its data.

Every file the project writes (checkpoints, feature caches, WAVs, figures,
CSV, JSON) goes through `atomic_path`, so a crash, Ctrl-C or `kill -9` never
leaves a truncated file under a final name, and an older file there survives
until the new one is complete; and a full disk is a DiskFullError that names
the folder and the space needed, whichever library was writing.
"""

import contextlib
import errno
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import uuid

from cli import UserError

RECORD = "separation.json"  # beside a song's outputs: what made them, and which files they are
FULL_BELOW = 16 * 2**20  # bytes: a write that fails with less free space than this (or than it needs) ran out of it


class DiskFullError(UserError):
    """A write that found no room left on its disk."""


class OverwriteError(UserError):
    """An output that would replace a file the project did not write."""


@contextlib.contextmanager
def atomic_path(path, size=None):
    """Yield a temporary path beside `path` (same extension); rename it to
    `path` when the block ends normally, delete it if the block fails.

    Every file the project writes goes through this (see the module docstring).
    `size`, the bytes the file will take if known, goes into the message of a
    full disk. The temporary file is named before it is created (mkstemp
    gives the name only once the file exists): a Ctrl-C that lands while it is
    being created then still finds it to delete. Its 122 random bits never
    meet another file's name.
    """
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".tmp-{uuid.uuid4().hex}{os.path.splitext(path)[1]}")
    try:
        open(tmp, "x").close()  # created with the permissions of a plain open()
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        full = disk_full_error(err, path, size)  # before the temporary file's space is given back
        if os.path.exists(tmp):
            os.unlink(tmp)
        if full:
            raise full from err
        raise


def write_json(path, content):
    """`content` as indented JSON into `path`, whole or not at all (atomic_path): records, run records, scores."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(content, f, indent=2)


def disk_full_error(err, path, size=None):
    """A DiskFullError for `err`, raised while writing `path` (`size` bytes, if known), if a full disk caused
    it; else None. Ask before deleting what the failed write left, which frees the space it measures."""
    if isinstance(err, Exception) and not isinstance(err, DiskFullError) and \
            _disk_is_full(err, os.path.dirname(os.path.abspath(path)), size):
        return DiskFullError(_full_disk_message(path, size))
    return None


def _disk_is_full(err, folder, size=None):
    """Did `err`, raised while writing into `folder`, come from a full disk?

    ENOSPC says so itself; torch.save ("unexpected pos") and libsndfile
    ("System error.") say nothing, so a failure of theirs counts as a full
    disk when the free space left is below what the file needs (or FULL_BELOW).
    """
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(err, (OSError, RuntimeError)) or getattr(err, "errno", None) is not None:
        return False  # not a failed write, or one whose own error number says why
    try:
        return shutil.disk_usage(folder).free < max(size or 0, FULL_BELOW)
    except OSError:
        return False


def cannot_write(err, path, hint):
    """The sentence for an OSError raised writing `path`: a full disk's (_full_disk_message), else the
    error's own reason and `hint`, what to do about it."""
    path = err.filename or path
    full = disk_full_error(err, path)
    return str(full) if full else f"cannot write {path} ({err.strerror}): {hint}"


def readable_size(n):
    """Bytes as a person reads them: 850 kB, 29.3 MB, 4.1 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e3:.0f} kB"


def _full_disk_message(path, size=None):
    """One sentence: which file did not fit, where, the room it needs and the room there is."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        free = f"{readable_size(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "no free space"
    needed = f", about {readable_size(size)} needed" if size else ""
    return (f"the disk is full: {path} could not be written ({free} in {folder}{needed}); free some space there "
            "or write to another disk (everything written before is intact)")


def file_identity(path):
    """{"path", "bytes", "mtime_ns"} of a file: what tells whether it changed (caches and records key on it)."""
    stat = os.stat(path)
    return {"path": os.path.abspath(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def keyed_name(name, key, extension):
    """A cache file's name: `name` made safe for any file system, then a digest of `key` (a JSON-able dict), so
    that a change in anything the key holds gives another file."""
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '_', name).strip('_')[:60]}-{digest}{extension}"


def read_record(folder):
    """The record (RECORD) in `folder`: a dict with the "files" it lists, or None if there is none or it is not one."""
    try:
        with open(os.path.join(folder, RECORD)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    ours = isinstance(record, dict) and isinstance(record.get("files"), list)
    return record if ours else None


def record_matches(folder, record):
    """True if the record in `folder` is `record` plus its "files", and every file it lists is there:
    the outputs there were made by what `record` describes, and all of them are whole."""
    done = read_record(folder)
    if done is None:
        return False
    files = done.pop("files")
    return done == record and all(os.path.isfile(os.path.join(folder, file)) for file in files)


def inside(path, folder):
    """True if `path` is `folder` or lies below it, links followed (a path that does not exist yet too)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def identities(paths):
    """{(device, inode): path} of the files at `paths` that exist: what a command reads, to compare its
    outputs with (check_replaceable). A hard link, a symbolic link or another spelling on a file system
    that ignores case is the same file under another name; only the inode tells."""
    found = {}
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        found[stat.st_dev, stat.st_ino] = path
    return found


def check_replaceable(folder, names, hint, reads=None):
    """Refuse to write any of `names` (RECORD included, if one is written) into `folder` over a file
    that the project did not write there, or over a file the command reads (`reads`, from identities):
    an OverwriteError naming it, with `hint`, what to do instead.

    The one rule of every writer of song outputs. A file may be replaced only
    if the record in `folder` lists it, and the record itself only if it is
    one: a data set's vocals.wav or the user's own file never is. An output
    of an earlier run is the project's, but given back as an input (its
    accompaniment separated again into the same --out-dir) it is read while
    its own output would replace it.
    """
    record = read_record(folder)
    ours = set(record["files"]) | {RECORD} if record else set()
    for name in names:
        path = os.path.join(folder, name)
        try:
            stat = os.stat(path)
        except OSError:
            stat = None
        if name not in ours and os.path.lexists(path):
            raise OverwriteError(f"{path} was not written by this project (no {RECORD} beside it lists it), "
                                 f"so it is not replaced: {hint}")
        read = (reads or {}).get((stat.st_dev, stat.st_ino)) if stat else None
        if read:  # the project's, yet read now
            same = os.path.abspath(read) == os.path.abspath(path)
            raise OverwriteError(f"{path} is {'' if same else f'the same file as {read}, '}an input of this command, "
                                 f"so it is not written over: {hint}")


def still_listed(folder, names):
    """`names`, then the files the record in `folder` lists beside them that are still there: a run that writes
    fewer files (no figure this time) goes on vouching for what an earlier run wrote, which stays replaceable."""
    record = read_record(folder)
    earlier = [name for name in (record["files"] if record else [])
               if name not in names and os.path.isfile(os.path.join(folder, name))]
    return list(names) + earlier


def make_readable(folder):
    """Give a folder from mkdtemp (mode 0700) the permissions a plain mkdir() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


@contextlib.contextmanager
def removed_on_failure(folder):
    """If the block fails, remove the outermost of `folder` and its parents that the block created, with all in it.

    For the outputs of one song: a failure or Ctrl-C leaves no new folder
    behind. Everything in that folder was written by the block, and not all of
    it is gone yet when the failure reaches here: a Ctrl-C that lands inside
    ExitStack.enter_context, after a temporary file was created but before
    its clean-up was registered, leaves that file to be deleted only when
    the exception is dropped, later. So the folder goes as a whole, not only
    once empty.
    """
    top_new, parent = None, os.path.abspath(folder)  # the outermost folder the block may create
    while not os.path.exists(parent):
        top_new, parent = parent, os.path.dirname(parent)
    try:
        yield
    except BaseException:
        if top_new:
            shutil.rmtree(top_new, ignore_errors=True)  # best effort: Windows keeps a file still open
        raise


# --------------------------------------------------------------------------
# MUSDB18's layout, and where the project keeps its own data
# --------------------------------------------------------------------------

MIXTURES = ("mixture.wav", "mixture.flac")  # a MUSDB18-HQ song folder: the mix beside its stems


def song_name(path):
    """The name of the song in an audio file: its file name without the extension(s).

    A MUSDB18-HQ song folder's mixture.wav is named after its folder.
    """
    name = os.path.basename(path)
    if name in MIXTURES:
        name = os.path.basename(os.path.dirname(os.path.abspath(path)))
    name = re.sub(r"(\.stem)?\.[A-Za-z0-9]+$", "", name)
    return name or "song"


def known_vocals(path):
    """Where a data set keeps the true vocals of the song in the file `path`: (file, audio stream), or None.

    A MUSDB18-HQ song folder has vocals.wav beside its mixture.wav; a MUSDB18
    .stem.mp4 holds them itself, as stream 4 (after mixture, drums, bass, other).
    """
    name = os.path.basename(path)
    if name in MIXTURES:
        vocals = os.path.join(os.path.dirname(path), "vocals" + os.path.splitext(name)[1])
        return (vocals, 0) if os.path.isfile(vocals) else None
    return (path, 4) if name.lower().endswith(".stem.mp4") else None


def distinct_names(songs):
    """[(output folder name, path)] from [(name, path)], each name made unique where two inputs share one.

    song.wav and song.mp3 would both write outputs/song/, the second over the
    first: the second gets "song (mp3)", and a third of the same name and
    type "song (2)". The same file given twice is separated once.
    """
    named, taken = [], set()
    seen = set()
    for name, path in songs:
        if os.path.realpath(path) in seen:
            continue
        seen.add(os.path.realpath(path))
        if name.lower() in taken:  # case-insensitive: macOS and Windows folders are
            extension = os.path.splitext(path)[1].lstrip(".").lower()
            candidates = [f"{name} ({extension})"] if extension else []
            candidates += [f"{name} ({i})" for i in range(2, len(songs) + 2)]
            name = next(c for c in candidates if c.lower() not in taken)
        taken.add(name.lower())
        named.append((name, path))
    return named


PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))


def data_folder():
    """Where the toy set and the caches go: the project's data/ folder, or, where the project cannot be
    written (a read-only install shared by a class), a folder of this user's ($XDG_CACHE_HOME, else
    ~/.cache), which the toy set's note then names."""
    folder = os.path.join(PROJECT_DIR, "data")
    if os.access(folder if os.path.isdir(folder) else PROJECT_DIR, os.W_OK):
        return folder
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser(os.path.join("~", ".cache")),
                        "unet-vocals")


STEMS = ("vocals", "drums", "bass", "other")
ACCOMPANIMENT = ("bass", "drums", "other")  # musdb's accompaniment target, summed in its order


@functools.lru_cache(maxsize=1)
def musdb_setup():
    """musdb's description of MUSDB18 (file names, stem order, validation songs), read from its mus.yaml
    without importing musdb (which imports stempeg, which refuses to load without ffmpeg)."""
    import yaml

    folder = importlib.util.find_spec("musdb").submodule_search_locations[0]
    with open(os.path.join(folder, "configs", "mus.yaml")) as f:
        return yaml.safe_load(f)


DEFAULT_CACHE_DIR = os.path.join(data_folder(), "cache")  # decoded features (feature_cache.py), evaluate.py's scores
