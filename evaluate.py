"""Score the U-Net with BSS Eval v4 (museval) on the test songs of the data in use.

    python evaluate.py                                  # all toy test songs, checkpoints/best_model.pth
    python evaluate.py --root ~/musdb18 --n-test-songs 10
    python evaluate.py --songs "Toy Song test 01" --estimates-dir estimates

For every song it scores four estimates of the vocals and the accompaniment
(SDR, SIR, ISR, SAR in dB; the median over 1-second windows, as the MUSDB
benchmark reports them):

    U-Net         the model's separation (the same code as inference.py, with
                  the same --reconstruction and --network-input flags)
    mixture       the mix itself used as the estimate: the floor
    oracle 8 kHz  the ideal ratio mask |V| / (|V| + |A|) of the mono mix at the
                  model's own STFT (8192 Hz, bins up to 4096 Hz), applied by the
                  same reconstruction as the U-Net: the ceiling of any mask the
                  model could predict
    oracle full   the ideal ratio mask at the input's own rate, over the
                  full-band reconstruction's STFT: the ceiling of mono ratio
                  masking itself; the gap to "oracle 8 kHz" is the cost of the
                  lab's 8192 Hz band

It prints a per-song table and the medians over songs, and writes everything
to a JSON file (default outputs/scores.json).

A long evaluation (the 50 songs of MUSDB18's test set) is made to be left
running: the songs are scored --jobs at a time, each in a process of its own
(no more than the free memory holds: BSS Eval takes about 5 GB for a song of
3-6 minutes), longest first, with a line per song and the time the rest
needs; each song's rows are kept as soon as they exist (under --cache-dir),
and the JSON is rewritten after every song. Ctrl-C, and the same command
again goes on where it stopped; run again once finished, it prints the
table from the cache at once (with --estimates-dir too, where the
estimates are there, whole, for this checkpoint); a second checkpoint
reuses the mixture and oracle rows, which do not depend on the model, and
pays for its own row only.
"""

import cli

if __name__ == "__main__":  # Ctrl-C while the imports below load ends in one line too
    cli.exit_quietly_while_starting()

# The imports come after the handler on purpose: they are the slow part it covers.
import importlib.metadata
import json
import os
import sys
import time

import torch

import checkpoints
import files
import metrics
from audio import AudioError, find_ffmpeg, write_audio
from device import pick_device
from metrics import METHODS, METRICS, TARGETS, EvaluationError
from separation import SeparationOptions
from songs import find_songs, find_songs_by_name, skipped_line
from workers import available_bytes, each_result

_SCORES_VERSION = 1  # of the cached rows: raise it when what they hold changes


# --------------------------------------------------------------------------
# Scores kept per song: a second checkpoint pays for its own row only
# --------------------------------------------------------------------------

def _score_keys(song, checkpoint, signal_config, options):
    """{"U-Net": key, "references": key}: the cache names of a song's two groups of rows.

    The references (mixture, both oracles) depend on the song's files, the
    model's signal settings and the reconstruction, not on the model; the
    U-Net row also on the checkpoint (its path, size and time: retraining
    changes it) and every separation setting.
    """
    common = {"song": [files.file_identity(f) for f in song.files], "signal": signal_config.to_dict(),
              "reconstruction": options.reconstruction, "museval": importlib.metadata.version("museval"),
              "version": _SCORES_VERSION}
    model = dict(common, checkpoint=files.file_identity(checkpoint), network_input=options.network_input)
    return {group: files.keyed_name(song.name, key, ".json")
            for group, key in (("U-Net", model), ("references", common))}


def _read_cached(cache_dir, name):
    """The rows cached under `name`, or None (missing or unreadable: scored again)."""
    try:
        with open(os.path.join(cache_dir, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------
# Songs in parallel: each worker process loads the model once
# --------------------------------------------------------------------------


def workers_that_fit(workers, songs, quiet=False):
    """`workers`, or fewer if that many songs scored at once would not fit in memory.

    A worker killed for memory would leave the run waiting forever, so the
    number of songs scored at once is what the longest song allows, with a
    line saying so.
    """
    free = available_bytes()
    if not songs or free is None:
        return workers
    longest = max(songs, key=lambda song: song.duration)
    need = metrics.scoring_bytes(longest.duration, longest.rate)
    fits = max(1, min(workers, free // need))
    if free < need:
        print(f"Warning: scoring {longest.name} ({longest.duration / 60:.1f} min) needs about {need / 1e9:.1f} GB "
              f"of memory and {free / 1e9:.1f} GB is free: it may fail; close other programs first.")
    elif fits < workers and not quiet:
        print(f"Scoring {fits} song{'s' if fits > 1 else ''} at a time, not {workers}: each needs up to "
              f"{need / 1e9:.1f} GB of memory ({longest.name}, {longest.duration / 60:.1f} min) and "
              f"{free / 1e9:.1f} GB is free.")
    return fits


_WORKER = {}  # in each worker: the model, its signal settings, and what to score


def _start_worker(checkpoint, threads, options, estimates_dir):
    """A worker process: load the model for _score_job. The network runs on the CPU there: each process
    on a GPU would hold a CUDA context and a model of its own, for the smallest part of the work
    (BSS Eval, on the CPU, takes nearly all of it)."""
    find_ffmpeg()  # the songs' audio is decoded here: stem files need ffmpeg
    torch.set_num_threads(threads)
    model, signal_config = checkpoints.load_model(checkpoint, torch.device("cpu"))
    _WORKER.update(model=model, signal_config=signal_config, options=options, estimates_dir=estimates_dir)


def _score_job(job):
    """(index, scores, None) of one song: the rows asked (and the U-Net's estimates written, if wanted);
    scores None when a reference is silent; (index, None, reason) when the song cannot be read."""
    index, song, methods, model_key = job
    try:
        scores, estimates = metrics.evaluate_track(song, _WORKER["model"], _WORKER["signal_config"],
                                                   _WORKER["options"], methods)
    except AudioError as err:
        return index, None, str(err)
    if scores is not None and estimates is not None and _WORKER["estimates_dir"]:
        _write_estimates(_estimates_folder(_WORKER["estimates_dir"], song), estimates, song.rate, model_key)
    return index, scores, None


_ESTIMATES = tuple(f"{target}.wav" for target in TARGETS)  # a song's files under --estimates-dir


def _estimates_folder(estimates_dir, song):
    return os.path.join(estimates_dir, "test", song.name)


def _estimates_record(model_key):
    """The record (files.RECORD) of a song's estimates, less its "files": they go with the U-Net's cached row
    named `model_key` (_score_keys), which names the song's files, the checkpoint and the settings."""
    return {"made by": "evaluate.py", "scores": model_key}


def _write_estimates(folder, estimates, rate, model_key):
    """The U-Net's (vocals, accompaniment) into `folder`, with the record that lists them: one transaction.

    Wherever it stops (Ctrl-C, a full disk, a killed worker), the folder is
    one a rerun replaces: the record is renamed into place first, listing
    the files about to come and vouching for no model, so that whichever of
    them is there is the project's (files.check_replaceable); once both are
    whole, the record is written again with `model_key`, which tells a rerun
    that they are done (_estimates_done). A record never lists a file that
    someone else wrote there: _refuse_to_overwrite checked before any song.
    """
    os.makedirs(folder, exist_ok=True)
    _write_json(os.path.join(folder, files.RECORD), {"made by": "evaluate.py", "files": list(_ESTIMATES)})
    for name, audio in zip(_ESTIMATES, estimates):
        write_audio(os.path.join(folder, name), audio, rate)
    _write_json(os.path.join(folder, files.RECORD), dict(_estimates_record(model_key), files=list(_ESTIMATES)))


def _estimates_done(estimates_dir, song, model_key):
    """True if the song's estimates under `estimates_dir` are whole and made as `model_key` says."""
    return files.record_matches(_estimates_folder(estimates_dir, song), _estimates_record(model_key))


def _median_over_tracks(per_track):
    return {method: {target: {m: metrics.finite_median([s[method][target][m] for s in per_track.values()])
                              for m in METRICS} for target in TARGETS} for method in METHODS}


def _format_tables(per_track, medians):
    lines = [f"{'song':32} {'method':12} " + " ".join(f"{'voc ' + m:>8}" for m in METRICS)
             + " " + " ".join(f"{'acc ' + m:>8}" for m in METRICS)]
    rows = [(name[:32], scores) for name, scores in per_track.items()] + [("MEDIAN over songs", medians)]
    for name, scores in rows:
        if name == "MEDIAN over songs":
            lines.append("-" * len(lines[0]))
        for method in METHODS:
            s = scores[method]
            lines.append(f"{name:32} {method:12} "
                         + " ".join(f"{s['vocals'][m]:8.2f}" for m in METRICS) + " "
                         + " ".join(f"{s['accompaniment'][m]:8.2f}" for m in METRICS))
            name = ""
    return lines


def _write_json(path, content):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    files.write_json(path, content)


def get_args(argv=None):
    p = cli.ArgumentParser(description="BSS Eval v4 scores (museval) of the U-Net, the mixture and the oracle "
                                       "ratio mask on the test songs.")
    checkpoints.add_checkpoint_flag(p)
    cli.add_root_flag(p)
    cli.add_song_flags(p, count=True)
    p.add_argument("--out", default=os.path.join("outputs", "scores.json"), help="JSON file of the scores")
    p.add_argument("--estimates-dir", default=None,
                   help="also write the model's estimates as DIR/test/<song>/{vocals,accompaniment}.wav")
    cli.add_separation_flags(p)
    p.add_argument("--jobs", type=cli.bounded_number(int, 1, 256), default=min(os.cpu_count() or 1, 4),
                   help="songs scored at once, each in a process of its own (fewer if the free memory cannot hold "
                        "them: about 5 GB each)")
    p.add_argument("--cache-dir", default=files.DEFAULT_CACHE_DIR,
                   help="each song's scores are kept in CACHE_DIR/scores: the mixture and oracle rows for any "
                        "checkpoint, the U-Net's for this one (a rerun or an interrupted run goes on from there)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    p.add_argument("--quiet", action="store_true", help="print only the tables and errors")
    args = p.parse_args(argv)
    args.options = SeparationOptions.from_dict(vars(args))
    return args


def pick_songs(args):
    """(root, the test songs to score, {path: why it was left out}) as the flags ask."""
    root, songs, skipped = find_songs(args.root, subsets=("test",), quiet=args.quiet)
    if args.songs:  # only the songs asked for: find_song says why one of them was left out
        return root, find_songs_by_name(songs, args.songs, root, "test", skipped)[:args.n_test_songs], {}
    if not songs:
        raise EvaluationError(f"{root} has no test songs under test/ to score"
                              + (f" ({len(skipped)} left out: {left_out(dict(skipped))})" if skipped else ""))
    return root, songs[:args.n_test_songs], dict(skipped)


def left_out(skipped):
    """The songs of `skipped` ({path: reason}) and why, in one line."""
    return "; ".join(f"{os.path.basename(path)}: {reason}" for path, reason in skipped.items())


def _cached_rows(songs, keys, cache_dir, estimates_dir):
    """({index: the rows of songs[index] cached}, [(index, song, the methods to score, its U-Net key)])."""
    found, jobs = {}, []
    for i, song in enumerate(songs):
        found[i] = _read_cached(cache_dir, keys[i]["references"]) or {}
        # With --estimates-dir, the U-Net's row is scored again unless its estimates are there, whole.
        if not estimates_dir or _estimates_done(estimates_dir, song, keys[i]["U-Net"]):
            found[i].update(_read_cached(cache_dir, keys[i]["U-Net"]) or {})
        missing = [m for m in METHODS if m not in found[i]]
        if found[i].get("silent"):
            print(skipped_line(song.name, metrics.SILENT))
        elif missing:
            jobs.append((i, song, missing, keys[i]["U-Net"]))
    return found, jobs


def _score_songs(songs, checkpoint, model, signal_config, args, write, skipped):
    """{song: {method: scores}} of the songs, in their order, scoring only the rows not cached.

    The songs still to score go to --jobs worker processes; each song's rows
    are cached as soon as they exist, and write(per_track) is called after
    every song, so that an interrupted run leaves what it did and a rerun
    continues. Prints a line per song with the time the rest needs. A song
    that cannot be read is added to `skipped` ({path: reason}).
    """
    cache_dir = os.path.join(args.cache_dir, "scores")
    os.makedirs(cache_dir, exist_ok=True)
    keys = [_score_keys(song, checkpoint, signal_config, args.options) for song in songs]
    found, jobs = _cached_rows(songs, keys, cache_dir, args.estimates_dir)
    # At least one: where every row is cached, no job is left and the loop below has nothing to do.
    workers = workers_that_fit(max(1, min(args.jobs, len(jobs))), [job[1] for job in jobs], args.quiet)
    if workers == 1:  # here, with the model main() loaded
        _WORKER.update(model=model, signal_config=signal_config, options=args.options, estimates_dir=args.estimates_dir)
    started, threads = time.time(), max(1, torch.get_num_threads() // workers)

    def died(death):
        return EvaluationError(
            f"the process scoring {death.job[1].name} died (exit code {death.exitcode}"
            + ("; killed by the system, most likely for lack of memory: BSS Eval takes about 5 GB a song" if
               death.killed else "") + f"); the {len(complete(songs, found))} songs scored so far are kept, and the "
            "same command goes on from there (with --jobs 1 if memory is short)")

    with each_result(_score_job, jobs, workers, _start_worker, (checkpoint, threads, args.options, args.estimates_dir),
                     size=lambda job: job[1].duration, died=died) as results:
        for done, (_, (i, scores, reason)) in enumerate(results, 1):
            if _keep_rows(songs[i], found[i], scores, reason, keys[i], cache_dir, skipped):
                write(complete(songs, found))
                if not args.quiet:
                    print(f"[{done}/{len(jobs)}] {songs[i].name}: U-Net vocals SDR "
                          f"{found[i]['U-Net']['vocals']['SDR']:.2f} dB"
                          + cli.time_left(done, len(jobs), time.time() - started), flush=True)
    if not args.quiet and len(jobs) < len(songs):
        print(f"{len(songs) - len(jobs)} of {len(songs)} songs were scored before (cached in {cache_dir}); "
              f"{len(jobs)} scored now")
    return complete(songs, found)


def complete(songs, found):
    """{song name: {method: rows}} of the songs whose every row is found, in their order."""
    return {songs[i].name: {m: rows[m] for m in METHODS} for i, rows in found.items()
            if all(m in rows for m in METHODS)}


def _keep_rows(song, rows, scores, reason, keys, cache_dir, skipped):
    """What a worker gave for `song` (_score_job): its new rows added to `rows` and cached under `keys`, or
    why it was left out (`skipped`, {path: reason}). True if the song now has scores."""
    if reason:
        skipped[song.location] = reason
        print(skipped_line(song.location, reason))
        return False
    if scores is None:
        rows.clear()
        rows["silent"] = True
        print(skipped_line(song.name, metrics.SILENT))
    else:
        rows.update(scores)
    for group, methods in (("U-Net", ("U-Net",)), ("references", metrics.REFERENCE_METHODS)):
        _write_json(os.path.join(cache_dir, keys[group]), {"silent": True} if scores is None else
                   {m: rows[m] for m in methods})
    return scores is not None


def _refuse_to_overwrite(args, root, songs, checkpoint):
    """Before any song is scored: --out and --estimates-dir never write files.inside the data root (an estimate
    named vocals.wav over the reference itself) nor over a file the command reads (the checkpoint, a song's
    file behind a link), and the estimates replace only files evaluate.py wrote."""
    for flag, path in (("--out", args.out), ("--estimates-dir", args.estimates_dir)):
        if path and files.inside(path, root):
            raise EvaluationError(f"{flag} {path} is inside the data root {root}, whose files it could replace: "
                                  "pick a place outside it")
    reads = files.identities([checkpoint, *(file for song in songs for file in song.files)])
    out = files.identities([args.out])
    if out.keys() & reads.keys():
        raise EvaluationError(f"--out {args.out} is {reads[next(iter(out.keys() & reads.keys()))]}, an input of this "
                              "command, so it is not written over: give another --out")
    for song in songs if args.estimates_dir else []:
        files.check_replaceable(_estimates_folder(args.estimates_dir, song), [*_ESTIMATES, files.RECORD],
                          "give another --estimates-dir", reads)


def main(argv=None):
    cli.printable_output()
    args = get_args(argv)
    written = {}  # the songs in args.out so far
    try:
        checkpoint = checkpoints.find_checkpoint(args.checkpoint, args.quiet)
        model, signal_config = checkpoints.load_model(checkpoint, pick_device(args.cpu))  # a bad checkpoint stops here
        root, songs, skipped = pick_songs(args)
        _refuse_to_overwrite(args, root, songs, checkpoint)
        for path, reason in skipped.items():
            print(skipped_line(path, reason))
        settings = {"checkpoint": os.path.abspath(checkpoint), "root": root, "reconstruction": args.reconstruction,
                    "network_input": args.network_input,
                    "windows": "1 s, BSS Eval v4 (museval)"}

        def write(per_track):  # after every song: what is done so far, whole
            if per_track:
                _write_json(args.out, dict(settings, songs=len(songs), songs_scored=len(per_track),
                                          median=_median_over_tracks(per_track), tracks=per_track, skipped=skipped))
                written.update(per_track)

        per_track = _score_songs(songs, checkpoint, model, signal_config, args, write, skipped)
        if not per_track:
            raise EvaluationError("no song could be scored: " + (left_out(skipped) if skipped else
                                                                 "every one has a silent source"))
        write(per_track)
    except cli.UserError as err:
        sys.exit(f"error: {err}")
    except OSError as err:
        sys.exit(f"error: {files.cannot_write(err, args.out, 'pick another --out, --estimates-dir or --cache-dir')}")
    except KeyboardInterrupt:  # every file is written whole or not at all (files.atomic_path)
        done = f"{args.out} holds the {len(written)} songs scored so far" if written else \
            f"no scores written to {args.out}"
        print(f"Interrupted: {done}; the same command goes on where this one stopped.", file=sys.stderr)
        sys.exit(130)
    print("\n".join(_format_tables(per_track, _median_over_tracks(per_track))))
    print(f"Scores of {len(per_track)} song{'' if len(per_track) == 1 else 's'} written to {args.out}"
          + (f"; estimates in {args.estimates_dir}" if args.estimates_dir else ""))
    if skipped:
        sys.exit(f"error: {len(skipped)} song{'s' if len(skipped) > 1 else ''} could not be scored ("
                 + left_out(skipped)
                 + f"); {args.out} lists them")


if __name__ == "__main__":
    cli.run_command(main)
