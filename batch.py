"""Many songs as a batch: the songs of files and folders, separated one by one, and the closing summary.

    songs_of        the songs of audio files and folders of them (with --recursive, of their
                    subfolders too), each with the name of its output folder
    separate_all    separates them with the per-song function it is given; the record beside
                    each song's outputs (files.RECORD, _song_record) says what made them, so a
                    rerun skips the songs done so; a file that cannot be read is reported and
                    skipped; every song gets a line with the time the batch still needs, and
                    Ctrl-C one line saying what is complete

inference.py passes its per-song function in, so this module never imports it.
"""

import os
import sys
import time
from dataclasses import dataclass

from audio import AudioError, require_file
from cli import UserError, time_left
from files import (MIXTURES, RECORD, check_replaceable, distinct_names, file_identity, identities, known_vocals,
                   read_record, record_matches, song_name)
from separation import SeparationError

_AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".aif", ".aiff",
                    ".wma", ".webm", ".mka")


class BatchError(UserError):
    """A folder with nothing to separate in it."""


def songs_of(paths, recursive, out_dir, quiet=False):
    """[(output name, path)] of audio files and folders of them, the names made distinct (files.distinct_names).

    A file that is not there is refused now, before any song is separated,
    not after the ones before it.
    """
    songs = []
    for path in paths:
        songs += _songs_in(path, recursive, out_dir, quiet) if os.path.isdir(path) else \
            [(song_name(path), require_file(path))]
    return distinct_names(songs)


def _songs_in(folder, recursive, out_dir, quiet=False):
    """[(output name, path)] of the audio files of `folder` (see _audio_files_in), named by _mirrored_name."""
    found, below = _audio_files_in(folder, recursive, out_dir)
    if not found:
        raise BatchError(f"{folder} holds no audio files ({', '.join(_AUDIO_EXTENSIONS)})"
                         + ("" if recursive else "; add --recursive to look in its subfolders"))
    if below and not quiet:
        print(f"{folder}: left out the {below} audio file{'s' if below > 1 else ''} of its subfolders; "
              "add --recursive (-r) to separate them too")
    return [(_mirrored_name(folder, song), song) for song in found]


def _audio_files_in(folder, recursive, out_dir):
    """(the audio files in `folder`, and in its subfolders if `recursive`, by extension, sorted;
    how many more its subfolders hold, left out without `recursive`).

    A MUSDB18-HQ song folder gives its mixture only, not the stems beside it.
    What this project wrote is never a song: a folder holding a record
    (RECORD) holds outputs, and `out_dir`, where this batch writes, is left
    out where it lies inside `folder` (`inference.py . -r` in a music folder).
    """
    found, below, outputs = [], 0, os.path.realpath(out_dir)
    for parent, subfolders, names in os.walk(folder):
        subfolders[:] = sorted(s for s in subfolders if os.path.realpath(os.path.join(parent, s)) != outputs)
        if RECORD in names:
            continue
        names = [name for name in sorted(names)
                 if name.lower().endswith(_AUDIO_EXTENSIONS) and not name.startswith(".")]
        names = [name for name in names if name in MIXTURES] or names
        if recursive or parent == folder:
            found += [os.path.join(parent, name) for name in names]
        else:
            below += len(names)
    return found, below


def _mirrored_name(folder, path):
    """The output name of `path`, found in `folder`: its song name under the same subfolders,
    so that disc1/01.wav and disc2/01.wav go to disc1/01 and disc2/01."""
    relative = os.path.relpath(path, folder)
    subfolders = os.path.dirname(relative)
    if os.path.basename(path) in MIXTURES:  # the song is its folder, named by song_name
        subfolders = os.path.dirname(subfolders)
    return os.path.join(subfolders, song_name(path))


@dataclass
class _Planned:
    """One song of a batch, as _plan_batch found it before any was separated."""

    name: str  # of its output folder, under out_dir
    path: str
    folder: str  # where its outputs go
    record: dict = None  # what makes its outputs (_song_record); None if the file cannot be read
    size: int = 0  # bytes, for the time left
    problem: AudioError = None  # why the file cannot be read
    done: bool = False  # its outputs are there, made by the same record


def separate_all(songs, out_dir, separate_song, checkpoint, settings, outputs, force=False, quiet=False):
    """Separate [(name, path)] into out_dir/<name>/ one by one; returns the paths that failed.

    separate_song(path, folder, record=record) writes one song's `outputs`
    (their names) into its folder, and `record` (_song_record: what makes
    them, the `checkpoint` and the `settings` included) beside them as
    files.RECORD; it returns (the files written, samples clipped to full
    scale). Every song is looked at first (_plan_batch), so that a refusal
    comes before any song is separated. A file that cannot be read is
    reported and skipped, and the batch goes on; a song whose record is
    already that one is skipped unless `force`. Each song's line says how
    long the batch still needs, from the speed so far in bytes read.
    """
    plan = _plan_batch(songs, out_dir, checkpoint, settings, outputs, force)
    failed, started, done_bytes = [], time.time(), 0
    i, whole = 0, False  # the song at hand, and whether its outputs are all written
    try:  # Ctrl-C, or the reader gone (cli.ReaderEnd): each song's outputs appear whole or not at all
        for i, song in enumerate(plan):
            whole, count = song.done, f"[{i + 1}/{len(plan)}] " if len(plan) > 1 else ""
            if song.done:
                if not quiet:
                    print(f"{count}{song.path}: already separated into {song.folder} by this checkpoint (--force "
                          "redoes it)")
                continue
            if not quiet and os.path.basename(song.name) != song_name(song.path):
                print(f"{song.path} shares its name with another input: writing it to {song.folder}")
            try:
                if song.problem:
                    raise song.problem
                written, clipped = separate_song(song.path, song.folder, record=song.record)
            except (AudioError, SeparationError) as err:  # this file's fault: the batch goes on without it
                if len(plan) == 1:
                    raise
                failed.append(song.path)
                print(f"error: {err}; skipped it", file=sys.stderr)
                continue
            finally:
                done_bytes += song.size
            whole = True
            if not quiet:
                total = done_bytes + sum(later.size for later in plan[i + 1:] if not later.done)
                print(f"{count}{song.path}: wrote " + ", ".join(written)
                      + time_left(done_bytes, total, time.time() - started))
            if clipped:
                print(_clipped_line(clipped, song.folder))
        if len(plan) > 1:
            print(_closing_line(plan, failed, started))
    except KeyboardInterrupt:
        interrupted(plan[i].path, i, whole)
    return failed


def _clipped_line(clipped, folder):
    return (f"warning: {clipped} samples of {folder} went past full scale and were clipped, so vocals + "
            "accompaniment no longer sum back to the input there; --bit-depth 32f keeps them")


def _closing_line(plan, failed, started):
    """A batch's last line: its songs separated, already done and failed, and its time."""
    skipped = sum(song.done for song in plan)
    return (f"{len(plan) - skipped - len(failed)} songs separated, {skipped} already done, {len(failed)} failed"
            + (" (" + ", ".join(failed) + ")" if failed else "") + f", in {(time.time() - started) / 60:.1f} min")


def _song_record(path, checkpoint, settings):
    """What makes a song's outputs (files.RECORD): the input and the checkpoint (path, size and modification
    time: retraining changes it), and `settings`, every setting that changes the files."""
    return {"input": file_identity(path), "checkpoint": file_identity(checkpoint), **settings}


def _plan_batch(songs, out_dir, checkpoint, settings, outputs, force):
    """[_Planned] of [(name, path)]: where each goes, whether it is done, and whether its file can be read.

    Refuses the batch before any song is separated where one would replace a
    file this project did not write, or a file the batch reads (its songs, the
    true vocals they show, the checkpoint: files.check_replaceable), or, without
    `force`, the outputs of another checkpoint (a retrained one at the same
    path just redoes them).
    """
    plan, others = [], []
    read = [checkpoint] + [path for _, path in songs]
    reads = identities(read + [vocals[0] for vocals in map(known_vocals, read[1:]) if vocals])  # the figure's too
    for name, path in songs:
        song = _Planned(name, path, os.path.join(out_dir, name))
        try:
            song.record, song.size = _song_record(path, checkpoint, settings), os.path.getsize(path)
        except OSError as err:  # a broken link, a file gone since the folder was listed
            song.problem = AudioError(f"cannot read {path} ({err.strerror})")
        else:
            song.done = not force and record_matches(song.folder, song.record)
        if song.record and not song.done:
            check_replaceable(song.folder, outputs + [RECORD], "give another --out-dir", reads)
            made_by = (read_record(song.folder) or {}).get("checkpoint", {}).get("path")
            if not force and made_by not in (None, song.record["checkpoint"]["path"]):
                others.append((song.folder, made_by))
        plan.append(song)
    if others:
        more = f" (and so do {len(others) - 1} more song folders)" if len(others) > 1 else ""
        raise BatchError(f"{others[0][0]} holds what {others[0][1]} separated{more}: --force replaces it with this "
                         "checkpoint's outputs, or give another --out-dir to keep both")
    return plan


def interrupted(path, done, whole=False):
    """Ctrl-C while `path`, song number done + 1, was separated (or once it was: `whole`): one line
    saying what is complete, exit 130."""
    if whole:
        them = "it and the songs before it are" if done else "it is"
        print(f"Interrupted after {path}: {them} complete, and a rerun skips {'them' if done else 'it'}.",
              file=sys.stderr)
        sys.exit(130)
    before = "" if done == 0 else "; the song before it is complete" if done == 1 else \
        f"; the {done} songs before it are complete, and a rerun skips them"
    print(f"Interrupted: {path} was not written{before}.", file=sys.stderr)
    sys.exit(130)
