"""Many songs as a batch: the songs of a folder, separated one by one, and the closing summary.

    songs_in        the audio files of a folder (with --recursive, of its subfolders too),
                    each with the name of its output folder
    separate_all    separates [(name, path)] with the per-song function it is given: a rerun
                    skips the songs whose record (files.RECORD beside their outputs) says they
                    are done, a file that cannot be read is reported and skipped, every song
                    gets a line with the time the batch still needs, Ctrl-C one line

inference.py passes its per-song function in, so this module never imports it.
"""

import os
import sys
import time

from audio import AudioError
from cli import UserError, time_left
from files import MIXTURES, RECORD, record_matches, song_name
from separation import SeparationError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".aif", ".aiff",
                    ".wma", ".webm", ".mka")


class BatchError(UserError):
    """A folder with nothing to separate in it."""


def songs_in(folder, recursive, quiet=False):
    """[(output name, path)] of the audio files of `folder` (see audio_files_in), named by mirrored_name."""
    found, below = audio_files_in(folder, recursive)
    if not found:
        raise BatchError(f"{folder} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})"
                         + ("" if recursive else "; add --recursive to look in its subfolders"))
    if below and not quiet:
        print(f"{folder}: left out the {below} audio file{'s' if below > 1 else ''} of its subfolders; "
              "add --recursive (-r) to separate them too")
    return [(mirrored_name(folder, song), song) for song in found]


def audio_files_in(folder, recursive):
    """(the audio files in `folder`, and in its subfolders if `recursive`, by extension, sorted;
    how many more its subfolders hold, left out without `recursive`).

    A MUSDB18-HQ song folder gives its mixture only, not the stems beside it.
    """
    found, below = [], 0
    for parent, subfolders, names in os.walk(folder):
        subfolders.sort()
        names = [name for name in sorted(names) if name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith(".")]
        names = [name for name in names if name in MIXTURES] or names
        if recursive or parent == folder:
            found += [os.path.join(parent, name) for name in names]
        else:
            below += len(names)
    return found, below


def mirrored_name(folder, path):
    """The output name of `path`, found in `folder`: its song name under the same subfolders,
    so that disc1/01.wav and disc2/01.wav go to disc1/01 and disc2/01."""
    relative = os.path.relpath(path, folder)
    subfolders = os.path.dirname(relative)
    if os.path.basename(path) in MIXTURES:  # the song is its folder, named by song_name
        subfolders = os.path.dirname(subfolders)
    return os.path.join(subfolders, song_name(path))


def separate_all(songs, out_dir, record_of, separate_song, force=False, quiet=False):
    """Separate [(name, path)] into out_dir/<name>/ one by one; returns the paths that failed.

    separate_song(path, song_dir, record=record) writes one song's outputs, and
    `record` (record_of(path): what makes them) beside them as files.RECORD;
    it returns (the files written, samples clipped to full scale). A file that
    cannot be read is reported and skipped, and the batch goes on; a song
    whose record is already that one is skipped unless `force`. Each song's
    line says how long the batch still needs, from the speed so far in bytes
    read.
    """
    failed, skipped, started = [], 0, time.time()
    sizes, done_bytes = [os.path.getsize(path) for _, path in songs], 0
    for i, (name, path) in enumerate(songs):
        song_dir = os.path.join(out_dir, name)
        record = record_of(path)
        count = f"[{i + 1}/{len(songs)}] " if len(songs) > 1 else ""
        if not force and record_matches(song_dir, RECORD, record):
            skipped += 1
            if not quiet:
                print(f"{count}{path}: already separated into {song_dir} by this checkpoint (--force redoes it)")
            continue
        if not quiet and os.path.basename(name) != song_name(path):
            print(f"{path} shares its name with another input: writing it to {song_dir}")
        try:
            written, clipped = separate_song(path, song_dir, record=record)
        except KeyboardInterrupt:  # each song's outputs appear whole or not at all
            interrupted(path, i)
        except (AudioError, SeparationError) as err:  # this file's fault: the batch goes on without it
            if len(songs) == 1:
                raise
            failed.append(path)
            print(f"error: {err}; skipped it", file=sys.stderr)
            continue
        finally:
            done_bytes += sizes[i]
        if not quiet:
            print(f"{count}{path}: wrote " + ", ".join(written)
                  + time_left(done_bytes, done_bytes + sum(sizes[i + 1:]), time.time() - started))
        if clipped:
            print(f"warning: {clipped} samples of {song_dir} went past full scale and were clipped, so "
                  "vocals + accompaniment no longer sum back to the input there; --bit-depth 32f keeps them")
    if len(songs) > 1:
        print(f"{len(songs) - skipped - len(failed)} songs separated, {skipped} already done, {len(failed)} failed"
              + (" (" + ", ".join(failed) + ")" if failed else "") + f", in {(time.time() - started) / 60:.1f} min")
    return failed


def interrupted(path, done):
    """Ctrl-C while `path`, song number done + 1, was separated: one line saying what is complete, exit 130."""
    before = "" if done == 0 else "; the song before it is complete" if done == 1 else \
        f"; the {done} songs before it are complete, and a rerun skips them"
    print(f"Interrupted: {path} was not written{before}.", file=sys.stderr)
    sys.exit(130)
