"""A training run's identity: its record, its lock, and the checkpoint that continues it.

A save folder holds one run. Its record, run.json, says which (an id, when it
started, the flags that make it, the songs it trains and validates on), and
every checkpoint carries the same id. So:

    - `--resume` continues the run of the folder, from its newest checkpoint,
      never a checkpoint another run left there, and first writes what a stop
      between that epoch's files left out (final_model.pth, history.csv...);
    - the same command again continues its own run (a finished one has
      nothing left to do), while a new run with other flags into a folder
      holding a run is refused, before anything is written: the older run's
      files are never mixed with the new one's nor lost;
    - while a run trains it holds an exclusive lock on its folder (the system
      releases it when the process ends, killed or not), so a second
      train.py into the same folder is refused in one line;
    - a resumed run whose songs changed says what changed (the validation loss,
      the SDR and "best" then measure something else).

The lock is `fcntl.flock` on POSIX and `msvcrt.locking` on Windows, on a
file of its own (.lock), so it never blocks reading a checkpoint.
"""

import argparse
import csv
import datetime
import glob
import json
import os
import uuid

import checkpoints
import reports
from cli import UserError, pasteable
from figures import close_figure
from files import write_json

RECORD = "run.json"
_LOCK = ".lock"
_RECORD_FORMAT = 1
# The flags that say how this process runs, not what the run is: never taken from a checkpoint on
# --resume, and not compared when the same command comes again (a run may continue on another machine).
_MACHINE_FLAGS = ("cpu", "channels_last", "num_workers", "quiet", "decode_jobs", "cache_dir", "save_dir", "resume")


class RunError(UserError):
    """A save folder that holds another run, or that another process is training into."""


def read_record(save_dir):
    """The run record of `save_dir`, or None if there is none. A damaged one is a RunError."""
    path = os.path.join(save_dir, RECORD)
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise RunError(f"{path} cannot be read ({err}): delete it if the run of {save_dir} is no longer wanted, "
                       "or pick another --save-dir") from err
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise RunError(f"{path} is not a run record of this project: pick another --save-dir")
    return record


def _new_record(flags, data):
    """A new run's record: a fresh id, the start time, the flags that make it, its data (data_identity)."""
    return {"format": _RECORD_FORMAT, "id": uuid.uuid4().hex[:12],
            "started": _now(),
            "flags": _run_flags(flags), "data": data, "resumed": []}


def _write_record(save_dir, record):
    write_json(os.path.join(save_dir, RECORD), record)


def _run_flags(flags):
    """The flags that make a run what it is (all but _MACHINE_FLAGS), as a JSON-able dict."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in sorted(flags.items())
            if key not in _MACHINE_FLAGS}


def _checkpoints_in(save_dir):
    return sorted(glob.glob(os.path.join(glob.escape(save_dir), "*.pth")))


def _checkpoint_to_resume(save_dir, load):
    """The checkpoint that continues the run of `save_dir`, or None if it has none.

    The newest epoch among the checkpoints of the folder's run (a kill
    between two of an epoch's files can leave last_model.pth one epoch
    behind), last_model.pth on a tie (it may hold an interrupted epoch).
    A folder without a record (written before runs had one) continues its
    last_model.pth, the newest state of whichever run trained there last.
    `load(path)` reads a checkpoint (checkpoints.load_checkpoint); one that
    cannot be read is skipped with a line.
    """
    record = read_record(save_dir)
    last = os.path.join(save_dir, "last_model.pth")
    if record is None and os.path.isfile(last):
        return last
    best, best_epoch = None, -1
    for path in _checkpoints_in(save_dir):
        try:
            state = load(path)
        except UserError:
            print(f"Skipping unreadable checkpoint {path}")
            continue
        if record is not None and state.get("run_id") != record["id"]:
            continue
        if state["epoch"] > best_epoch or (state["epoch"] == best_epoch and path == last):
            best, best_epoch = path, state["epoch"]
    return best


def _holds_this_run(save_dir, flags):
    """True if `save_dir` holds checkpoints of the run that `flags` make (the same command again: it goes
    on), False if it holds none; a RunError if it holds another run's, which a new run would mix with."""
    if not _checkpoints_in(save_dir):
        return False
    record, where = read_record(save_dir), pasteable(save_dir)
    if record is None:
        raise RunError(f"{save_dir} holds checkpoints of an earlier run: --resume --save-dir {where} continues it, "
                       "or give another --save-dir to start a new run")
    wanted, theirs = _run_flags(flags), record["flags"]
    differ = [key for key in sorted(set(wanted) | set(theirs)) if wanted.get(key) != theirs.get(key)]
    if not differ:
        return True
    shown = ", ".join(f"{_flag_text(key, theirs.get(key))} (now {_flag_text(key, wanted.get(key))})"
                      for key in differ[:3]) + (", ..." if len(differ) > 3 else "")
    raise RunError(f"{save_dir} holds another run, started {record['started']} with {shown}: --resume --save-dir "
                   f"{where} continues that run (the flags typed then replace its own), or give another --save-dir "
                   "to start this one")


def parse_flags(parser, argv, load):
    """train.py's flags (`parser`, `argv`), those of the run they continue when they continue one.

    A run goes on when --resume asks, or when the save folder holds the run
    these very flags make (the same command again). Its checkpoint's flags are
    then the starting point (but _MACHINE_FLAGS) and those typed now replace
    them; args.resume is the checkpoint's path. `--resume PATH` without
    --save-dir goes on in PATH's folder. `load` reads a checkpoint.
    """
    args = parser.parse_args(argv)
    if args.resume not in (None, "latest") and parser.parse_args(argv, argparse.Namespace(save_dir=None)).save_dir \
            is None:
        args.save_dir = os.path.dirname(os.path.abspath(args.resume))
    if args.resume is None and not _holds_this_run(args.save_dir, vars(args)):
        return args  # a new run
    path = args.resume if args.resume not in (None, "latest") else _checkpoint_to_resume(args.save_dir, load)
    if path is None:
        raise RunError(f"--resume found no checkpoint in {args.save_dir}; train without --resume first")
    flags = vars(parser.parse_args([]))  # every flag, to skip what an older version stored
    stored = {key: value for key, value in load(path, flag="--resume")["args"].items()
              if key in flags and key not in _MACHINE_FLAGS}
    args = parser.parse_args(argv, namespace=argparse.Namespace(**stored, save_dir=args.save_dir))  # typed win
    args.resume = path
    return args


def resuming_line(args, resumed, parser):
    """'Resuming from PATH (epoch 3, step 30); it keeps --max-batches 5, ...': with the flags of the run that
    are its own (stored in its checkpoint) and not the defaults, so that a smoke test's limits never go on
    unseen."""
    defaults, stored = vars(parser.parse_args([])), resumed["args"]
    kept = [_flag_text(key, value) for key, value in _run_flags(vars(args)).items()
            if key in stored and _same(stored[key], value) and not _same(value, defaults.get(key))]
    return (f"Resuming from {args.resume} (epoch {resumed['epoch']}, step {resumed['step']})"
            + (f"; it keeps {', '.join(kept)} (a flag typed now replaces the run's own)" if kept else ""))


def _same(a, b):
    return (list(a) if isinstance(a, tuple) else a) == (list(b) if isinstance(b, tuple) else b)


def begin(save_dir, held, flags, data, resumed):
    """Take `save_dir` for a run: make it, lock it (the lock goes into the ExitStack `held`), clear what a
    killed run left half-written, and write the run's record. Returns (the run's id, the line saying what
    changed in its data since it last trained, or None).

    `resumed` is the checkpoint a run goes on from (None for a new run). It
    must belong to the folder's run, and a new run needs a folder free of
    checkpoints: both were checked before (get_args), and are again here,
    under the lock, where no other process can change them.
    """
    os.makedirs(save_dir, exist_ok=True)
    held.enter_context(FolderLock(save_dir))
    for stale in glob.glob(os.path.join(glob.escape(save_dir), ".tmp-*")):  # a killed run's half-written files
        os.unlink(stale)
    record = read_record(save_dir)
    if resumed is None:
        if _checkpoints_in(save_dir):
            raise RunError(f"another run started into {save_dir} meanwhile: give another --save-dir")
        record, changed = _new_record(flags, data), None
    else:
        run_id = resumed.get("run_id")  # None: written before runs had an id
        if record is not None and run_id not in (None, record["id"]):
            raise RunError(f"that checkpoint belongs to another run than the one in {save_dir}: give another "
                           "--save-dir to continue it there")
        if record is None:  # a folder of before run records, or a run going on in a new folder
            record = dict(_new_record(flags, data), id=run_id or uuid.uuid4().hex[:12])
        changed = _data_changes(record["data"], data)
        record["resumed"].append({"at": _now(), "epoch": resumed["epoch"], "data changed": changed})
        record.update(flags=_run_flags(flags), data=data)
        _complete_epoch(save_dir, resumed, flags)
    _write_record(save_dir, record)
    return record["id"], changed and (f"The data changed since this run last trained: {changed}; its baselines "
                                      "are measured again, and best_model.pth is chosen on these songs from here on.")


def _complete_epoch(save_dir, resumed, flags):
    """Write the files of the epoch the checkpoint `resumed` ended that a stop between them (a kill, a full
    disk) left missing or older: its checkpoints (checkpoints.epoch_files), history.csv and loss_curve.png.
    Without this, a run stopped after best_model.pth of its last epoch would resume from it with nothing
    left to do, and no final_model.pth. A checkpoint of an interrupted epoch (Ctrl-C) ended none."""
    epoch = resumed["epoch"]
    if not epoch or resumed.get("epoch_batches"):
        return
    improved = resumed.get("best_epoch") == epoch
    for name in checkpoints.epoch_files(epoch, flags["epochs"], improved, flags["checkpoint_every"]):
        path = os.path.join(save_dir, name)
        try:
            behind = checkpoints.load_checkpoint(path)["epoch"] < epoch
        except UserError:  # missing, or half-written by a version before atomic writes
            behind = True
        if behind:
            checkpoints.save_checkpoint(path, resumed)
    try:
        with open(os.path.join(save_dir, "history.csv"), newline="") as f:
            rows = sum(1 for _ in csv.DictReader(f))
    except OSError:
        rows = None
    if rows != len(resumed["history"]):
        close_figure(reports.write_history(save_dir, resumed["history"], resumed.get("best_epoch", 0), set()))


def _now():
    return datetime.datetime.now().isoformat(timespec="seconds")


def _flag_text(key, value):
    """How a flag is typed: --seed 2, --no-augment, --channels 32 64."""
    name = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        return name if value else f"--no-{key.replace('_', '-')}"
    if value is None:
        return f"{name} unset"
    return f"{name} {' '.join(map(str, value)) if isinstance(value, (list, tuple)) else value}"


def data_identity(split):
    """What a run trains and validates on (songs.DataSplit): the root's real path and each song's files'
    total size, by name. Cheap (no audio is read), and enough to tell another set or an edited song."""
    def sizes(found):
        return {song.name: sum(os.path.getsize(path) for path in song.files) for song in found}

    return {"root": os.path.realpath(split.root), "train": sizes(split.train), "valid": sizes(split.valid)}


def _data_changes(before, now):
    """What changed between two data_identity()s, as one phrase, or None."""
    changes = []
    if before.get("root") != now["root"]:
        changes.append(f"the data root is {now['root']} (was {before.get('root')})")
    for part in ("valid", "train"):
        old, new = before.get(part, {}), now[part]
        words = [f"{len(new.keys() - old.keys())} added", f"{len(old.keys() - new.keys())} gone",
                 f"{sum(old[name] != new[name] for name in old.keys() & new.keys())} changed"]
        words = [w for w in words if not w.startswith("0 ")]
        if words:
            label = "validation" if part == "valid" else "training"
            names = sorted(new.keys() ^ old.keys())[:2]
            changes.append(f"{label} songs {', '.join(words)}" + (f" ({', '.join(names)})" if names else ""))
    return "; ".join(changes) or None


class FolderLock:
    """An exclusive lock on a save folder while a run trains into it (a context manager).

    The system releases it when the process ends, however it ends, so a
    killed run never leaves its folder locked. The lock file holds the pid
    of its holder, for the message of the process that is refused.
    """

    def __init__(self, save_dir):
        self.path = os.path.join(save_dir, _LOCK)
        self.file = None

    def __enter__(self):
        self.file = open(self.path, "a+")
        try:
            _lock(self.file)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip()
            self.file.close()
            raise RunError(f"another train.py{f' (process {holder})' if holder.isdigit() else ''} is training into "
                           f"{os.path.dirname(self.path)}: wait for it to end, or give another --save-dir") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def __exit__(self, *exc):
        self.file.close()  # closing releases the lock


def _lock(f):
    """Lock the open file `f` exclusively without waiting; OSError if another process holds it."""
    if os.name == "nt":
        import msvcrt

        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
