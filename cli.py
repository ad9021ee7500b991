"""What every script's command line shares: flag types, help, the data flags, user errors, the console.

It imports nothing but the standard library (the device, its precision and
memory layout are device.py's), so that every script can import it first.
Each script (data.py, train.py, inference.py, evaluate.py) builds its own
argparse parser in `get_args()` from these pieces, and its `main()` catches
`UserError`: every mistake a user can make (a missing folder, a damaged file,
a bad checkpoint) is raised as a subclass of it with a one-sentence message,
and ends as `error: <message>` and exit code 1, never a traceback.
"""

import argparse
import gc
import importlib.util
import io
import os
import shlex
import shutil
import signal
import sys

# Only the standard library at the top: every script imports this module first, so that it can say in
# one line how to install what is missing (below), and inference.py and evaluate.py catch Ctrl-C with it
# before their slow imports (torch alone takes seconds). torch and tqdm are imported where they are used.

# The packages every script needs (requirements.txt), by the name they are imported under.
_REQUIRED = ("torch", "torchaudio", "numpy", "scipy", "soundfile", "musdb", "museval", "tqdm", "matplotlib",
            "tensorboard")


def require_installed():
    """Exit with one line if the project's packages are not installed for this Python: run from the
    system's Python instead of the project's virtual environment, every script would otherwise stop
    at its first import with a ModuleNotFoundError."""
    missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"error: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed for "
                 f"{sys.executable}: run the scripts with the project's environment (.venv/bin/python, or "
                 "`source .venv/bin/activate` first), or create it: python3 -m venv .venv && "
                 ".venv/bin/pip install -r requirements.txt")


require_installed()


def _reopen_closed_descriptors():
    """Open os.devnull onto whichever of file descriptors 0, 1 and 2 is closed (`python train.py >&-`).

    A file opened later would otherwise get the closed one's number, and what
    is written to standard output or error (a library's warning, a child
    process like ffmpeg) would go into that file, a checkpoint perhaps.
    Opened in order, each takes the lowest free number: the closed one. The
    output is then simply not shown, as with `>/dev/null`.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)


_reopen_closed_descriptors()  # on import: every script imports this module before it opens any file


class UserError(Exception):
    """A problem the user can fix; the message is one sentence saying what to do."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each flag's default, except where there is none to show
    (the flag's own text then says what happens when it is left out)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with _HelpFormatter, whose usage errors are one line.

    argparse prints the whole usage (15 lines for train.py) before the line
    that says what is wrong; here that line comes alone, with where to look.
    """

    def __init__(self, **kwargs):
        super().__init__(formatter_class=_HelpFormatter, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def bounded_number(kind, low, high, low_open=False):
    """An argparse type: a `kind` number in [low, high] ((low, high] if low_open).

    The upper bounds only catch typos (a batch of a million patches would just
    run out of memory after minutes of loading); they are far above any
    sensible value.
    """
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}")
        if value != value or value > high or value < low or (low_open and value == low):
            bound = f"above {low:g}" if low_open else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"must be {bound} and at most {high:g}, got {text}")
        return value
    return parse


def positive_int_or_all(text):
    """An argparse type: a whole number >= 1, or 'all' (None)."""
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'all', got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_root_flag(parser):
    """--root, the same for every script."""
    parser.add_argument("--root", default=None,
                        help="MUSDB18 or MUSDB18-HQ folder; if not given: $MUSDB_PATH, else the generated toy set")


DEFAULT_N_SONGS = 10


def add_training_songs_flag(parser):
    """--n-songs for the scripts that train on (or summarise) the training songs."""
    parser.add_argument("--n-songs", type=positive_int_or_all, default=DEFAULT_N_SONGS,
                        help="training songs to use, or 'all'; a data set with fewer than the default 10 is "
                             "used whole")


class _RenamedFlag(argparse.Action):
    """An older spelling of a flag, kept working: it sets what the new one sets, and says the new name in one
    line (on stderr, apart from the command's output)."""

    def __init__(self, option_strings, dest, new_name, why, **kwargs):
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new_name, self.why = new_name, why

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"Warning: {option_string} is now {self.new_name} ({self.why}); the old name will go.", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_song_flags(parser, count=False):
    """--songs NAME... (and with `count`, --n-test-songs N) for the scripts that pick songs of a data set.

    The older spellings --tracks and --track still work; --n-songs and --n-tracks too, with a line giving
    the new name: train.py's --n-songs counts training songs.
    """
    parser.add_argument("--songs", "--tracks", "--track", dest="songs", nargs="+", default=None, metavar="NAME",
                        help="songs of the data set, by name")
    if count:
        parser.add_argument("--n-test-songs", type=positive_int_or_all, default=None, metavar="N",
                            help="only the first N test songs, or 'all' (default: all)")
        parser.add_argument("--n-songs", "--n-tracks", dest="n_test_songs", type=positive_int_or_all,
                            action=_RenamedFlag, new_name="--n-test-songs",
                            why="it counts test songs, where train.py's counts training songs")


def add_separation_flags(parser):
    """--reconstruction and --network-input, shared by inference.py and evaluate.py.

    They hold separation.SeparationOptions' fields, under the same names
    (SeparationOptions.from_dict(vars(args)) reads them); the defaults are
    written out because this module imports no project module, and a test
    keeps them equal to SeparationOptions()'s.
    """
    parser.add_argument("--reconstruction", choices=("full", "lab"), default="full",
                        help="full: the mask applied at the input's own rate, vocals in the whole band; "
                             "lab: the lab's reconstruction at 8192 Hz, vocals stop at 4096 Hz")
    parser.add_argument("--network-input", choices=("whole", "patches"), default="whole",
                        help="whole: the network reads the song (up to 5-minute blocks) in one pass; patches: "
                             "in the training's 128-frame patches, overlapping by half (twice the work)")


def runnable(program="python"):
    """How to spell `program` in a command we print, so that it runs as pasted.

    `program` is "python" (this interpreter) or a tool installed beside it
    (tensorboard, torchrun). The README's quickstart calls .venv/bin/python
    without activating the environment, where a bare `python` would be the
    system's (no torch) and `tensorboard` would not be found: so the bare name
    only when PATH finds this very environment's, else its path.
    """
    folder = os.path.dirname(os.path.abspath(sys.executable))
    own = sys.executable if program == "python" else os.path.join(folder, program)
    found = shutil.which(program)
    if (found and os.path.dirname(os.path.abspath(found)) == folder) or not os.path.exists(own):
        return program
    word = pasteable(own)
    return word if os.sep in word else os.path.join(".", word)  # a program in this very folder


def pasteable(path):
    """`path` as a shell word that works from here: relative below the current folder, else absolute."""
    relative = os.path.relpath(path)
    return shlex.quote(os.path.abspath(path) if relative.startswith("..") else relative)


def progress_bar(items, quiet=False, **tqdm_args):
    """A tqdm bar over `items` on a terminal only.

    Written to a pipe or a log file, a bar's carriage-return frames pile up
    into one huge line; the scripts print their own per-epoch or per-file
    lines anyway, so there the bar is simply off.
    """
    from tqdm import tqdm

    return tqdm(items, disable=quiet or not sys.stderr.isatty(), **tqdm_args)


def time_left(done, total, elapsed):
    """' (about 40 s left)' or ' (about 12 min left)': the rest of `total` at the pace of the `done` so far
    (any unit: songs, bytes); '' once all is done."""
    if done >= total or done <= 0:
        return ""
    left = (total - done) * elapsed / done
    return f" (about {left:.0f} s left)" if left < 90 else f" (about {left / 60:.0f} min left)"


def printable_output():
    """Make standard output and error safe to print to; each main() calls it, run_command first.

    File names that are not valid UTF-8 print as backslash escapes (Python
    keeps their stray bytes as surrogates, which a strict stream refuses with
    a UnicodeEncodeError). And where the streams are the process's own, a
    reader that leaves (`python inference.py FOLDER | head -1`) is a stop
    request (ReaderEnd), not a BrokenPipeError wherever the next print is.
    """
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if stream is None or stream is getattr(sys, f"__{name}__"):  # the process's own, not yet replaced
            if stream is not None:
                stream.flush()
            setattr(sys, name, io.TextIOWrapper(io.BufferedWriter(ReaderEnd(fd)), getattr(stream, "encoding", None),
                                                errors="backslashreplace", line_buffering=True))
        elif hasattr(stream, "reconfigure"):  # a stream tests capture, or one a caller gave
            stream.reconfigure(errors="backslashreplace")


_PIPE_CLOSED = 141  # the exit status of a command that found its reader gone: 128 + SIGPIPE, as the shell's tools


class ReaderEnd(io.FileIO):
    """Standard output or error, whose reader may go away (`| head -1` has read enough): its way to
    say stop, as SIGPIPE is in C programs.

    The first write that finds the reader gone turns the stream to os.devnull
    (nothing more is shown, and no later write or child process fails on it)
    and raises SIGINT: the command stops at its next safe point exactly as on
    Ctrl-C (train.py saves last_model.pth, inference.py keeps the songs it
    wrote and drops the one in progress), and run_command ends it with
    _PIPE_CLOSED. Line by line (line_buffering), so the request comes at once.
    """

    gone = False  # the reader left, in this process: run_command's exit status

    def __init__(self, fd):
        super().__init__(fd, "w", closefd=False)
        self.owner = os.getpid()  # a forked worker (a DataLoader's) that writes here is not the command

    def write(self, data):
        try:
            return super().write(data)
        except BrokenPipeError:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.fileno())
            os.close(null)
            if not ReaderEnd.gone and os.getpid() == self.owner:
                ReaderEnd.gone = True
                signal.raise_signal(signal.SIGINT)  # the handler runs now: Ctrl-C's, or StopRequests'
            return len(data)


def exit_quietly_while_starting():
    """Ctrl-C before main() runs (torch takes a second or more to import): one line, exit 130.

    Called by inference.py and evaluate.py before their slow imports; this
    module imports nothing slow, so it can come first.
    """
    def interrupted(signum, frame):
        print("Interrupted while starting: nothing was written.", file=sys.stderr)
        sys.exit(130)

    signal.signal(signal.SIGINT, interrupted)


def run_command(main):
    """Run a script's main() as a command, once its imports are done.

    From here on Ctrl-C, SIGTERM (`kill`) and SIGHUP (the terminal closed) raise KeyboardInterrupt,
    which main() turns into one line after the temporary files are gone
    (files.atomic_path); so does a reader that leaves (ReaderEnd), and the
    command then ends with _PIPE_CLOSED. And the 160,000 objects the imports leave (nearly
    all torch's), which live until the end, are frozen: the garbage
    collector then skips them in its passes and at exit (about a second off
    every command: benchmarks/README.md, "Fast paths").
    """
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.default_int_handler)
    printable_output()  # before main() parses the flags: `--help | head -1` too
    gc.freeze()
    try:
        main()
    except KeyboardInterrupt:  # one that lands after main()'s own handling, in its last lines
        sys.exit(_PIPE_CLOSED if ReaderEnd.gone else 130)
    except SystemExit as end:
        if ReaderEnd.gone and end.code in (None, 0, 130):  # stopped by the reader (an error keeps its own)
            sys.exit(_PIPE_CLOSED)
        raise
    if ReaderEnd.gone:
        sys.exit(_PIPE_CLOSED)


# Ctrl-C; `kill` and a cluster's time limit; the terminal closed (SIGHUP: not on Windows).
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopRequests:
    """Ctrl-C, SIGTERM or SIGHUP (_STOP_SIGNALS) during long work: stop at the next safe point.

    Python's own Ctrl-C raises KeyboardInterrupt wherever the program is; when
    that is inside a finalizer (a `__del__`), Python prints it and drops it,
    and the run would go on as if nothing was pressed. So the handler only
    takes note, and `check()`, called between two steps, raises it; a second
    Ctrl-C interrupts at once.
    """

    def __init__(self):
        self.requested = False
        self.previous = {sig: signal.signal(sig, self._note) for sig in _STOP_SIGNALS}

    def release(self):
        """Give the signals back to their previous handlers (the long work is over)."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _note(self, signum, frame):  # the signal handler
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self):
        if self.requested:
            raise KeyboardInterrupt
