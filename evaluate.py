"""Score the U-Net with BSS Eval v4 (museval) on the test songs of the data in use.

    python evaluate.py                                  # all toy test songs, checkpoints/best_model.pth
    python evaluate.py --root ~/musdb18 --n-songs 10
    python evaluate.py --songs "Toy Song test 01" --estimates-dir estimates

For every song it scores four estimates of the vocals and the accompaniment
(SDR, SIR, ISR, SAR in dB; the median over 1-second windows, as the MUSDB
benchmark reports them):

    U-Net         the model's separation (the same code as inference.py, with
                  the same --reconstruction and --wiener flags)
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
"""

import cli

if __name__ == "__main__":  # Ctrl-C while the imports below load ends in one line too
    cli.exit_quietly_while_starting()

# The imports come after the handler on purpose: they are the slow part it covers.
import json
import os
import sys

import numpy as np

from audio import write_audio
from checkpoints import find_checkpoint, load_model
from cli import UserError, add_root_flag, add_song_flags, find_song, pick_device, progress_bar
from data import find_tracks
from files import atomic_path, cannot_write
from inference import add_checkpoint_flag, add_separation_flags, separation_options
from separation import SeparationOptions, mix_magnitude, ratio_mask, reconstruct, separate, synthesis_config

METRICS = ("SDR", "SIR", "ISR", "SAR")
TARGETS = ("vocals", "accompaniment")
METHODS = ("U-Net", "mixture", "oracle 8 kHz", "oracle full")


class EvaluationError(UserError):
    """Nothing that can be scored."""


def oracle_model_band(mix, vocals, accompaniment, rate, signal_config, reconstruction="full"):
    """(vocals, accompaniment) from the ideal mask at the model's STFT, rebuilt as the model's mask is."""
    mask = ratio_mask(*(mix_magnitude(source, rate, signal_config) for source in (vocals, accompaniment)))  # (F, T)
    return reconstruct(mix, rate, mask, signal_config, SeparationOptions(reconstruction))


def oracle_full_band(mix, vocals, accompaniment, rate):
    """(vocals, accompaniment) from the ideal mask of the mono mix over the full-band STFT at the input's rate."""
    synthesis = synthesis_config(rate)
    mask = ratio_mask(*(mix_magnitude(source, rate, synthesis) for source in (vocals, accompaniment)))  # (F', T')
    return reconstruct(mix, rate, mask, synthesis)


def bss_eval(references, estimates, rate):
    """{target: {metric: median over 1 s windows}} with museval's BSS Eval v4."""
    import museval  # here, not at the top: it imports stempeg, which needs ffmpeg on PATH (data.find_tracks)

    n = min(references[0].shape[0], estimates[0].shape[0])
    refs = np.stack([r[:n] for r in references])  # (2, n, channels)
    ests = np.stack([e[:n] for e in estimates])  # (2, n, channels)
    # BSS Eval is undefined for an all-zero estimate (a model that predicts an
    # empty mask); a -200 dB dither makes it computable, and it scores as badly as it should.
    for i in range(len(ests)):
        if not ests[i].any():
            ests[i] = 1e-10 * np.random.default_rng(i).standard_normal(ests[i].shape)
    sdr, isr, sir, sar = museval.evaluate(refs, ests, win=rate, hop=rate)
    scores = {}
    for i, target in enumerate(TARGETS):
        values = {"SDR": sdr[i], "SIR": sir[i], "ISR": isr[i], "SAR": sar[i]}
        scores[target] = {m: finite_median(v) for m, v in values.items()}
    return scores


def finite_median(values):
    """The median of the finite values (BSS Eval gives NaN where a reference is silent), NaN if none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]  # windows where a reference is silent are undefined
    return float(np.median(values)) if values.size else float("nan")


def evaluate_track(track, model, signal_config, options=SeparationOptions()):
    """{method: {target: {metric: dB}}} for one musdb track, and the model's estimates;
    (None, None) when a reference is silent, where BSS Eval is undefined."""
    mix = track.audio.astype(np.float32)  # (samples, channels)
    vocals = track.targets["vocals"].audio.astype(np.float32)
    accompaniment = track.targets["accompaniment"].audio.astype(np.float32)
    references = (vocals, accompaniment)
    if not vocals.any() or not accompaniment.any():
        return None, None
    estimates = {
        "U-Net": separate(model, signal_config, mix, track.rate, options),
        "mixture": (mix, mix),
        "oracle 8 kHz": oracle_model_band(mix, vocals, accompaniment, track.rate, signal_config,
                                          options.reconstruction),
        "oracle full": oracle_full_band(mix, vocals, accompaniment, track.rate),
    }
    scores = {method: bss_eval(references, est, track.rate) for method, est in estimates.items()}
    return scores, estimates["U-Net"]


def median_over_tracks(per_track):
    return {method: {target: {m: finite_median([s[method][target][m] for s in per_track.values()])
                              for m in METRICS} for target in TARGETS} for method in METHODS}


def format_tables(per_track, medians):
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


def write_json(path, content):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(content, f, indent=2)


def get_args(argv=None):
    p = cli.ArgumentParser(description="BSS Eval v4 scores (museval) of the U-Net, the mixture and the oracle "
                                       "ratio mask on the test songs.")
    add_checkpoint_flag(p)
    add_root_flag(p)
    add_song_flags(p, count=True)
    p.add_argument("--out", default=os.path.join("outputs", "scores.json"), help="JSON file of the scores")
    p.add_argument("--estimates-dir", default=None,
                   help="also write the model's estimates as DIR/test/<song>/{vocals,accompaniment}.wav")
    add_separation_flags(p)
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    p.add_argument("--quiet", action="store_true", help="print only the tables and errors")
    args = p.parse_args(argv)
    args.options = separation_options(p, args)
    return args


def pick_tracks(args):
    root, tracks = find_tracks(args.root, subsets=("test",), quiet=args.quiet)
    if not tracks:
        raise EvaluationError(f"{root} has no test songs under test/ to score")
    if args.songs:
        tracks = [find_song(tracks, name, root, "test") for name in args.songs]
    return root, tracks[:args.n_songs]


def main(argv=None):
    args = get_args(argv)
    try:
        checkpoint = find_checkpoint(args.checkpoint, args.quiet)
        model, signal_config = load_model(checkpoint, pick_device(args.cpu))
        root, tracks = pick_tracks(args)
        per_track = {}
        for track in progress_bar(tracks, args.quiet, desc="scoring", unit="song"):
            scores, estimates = evaluate_track(track, model, signal_config, args.options)
            if scores is None:
                print(f"Skipping {track.name}: its vocals or accompaniment is silent, where BSS Eval "
                      "is undefined.")
                continue
            per_track[track.name], (vocals, accompaniment) = scores, estimates
            if args.estimates_dir:
                folder = os.path.join(args.estimates_dir, "test", track.name)
                os.makedirs(folder, exist_ok=True)
                write_audio(os.path.join(folder, "vocals.wav"), vocals, track.rate)
                write_audio(os.path.join(folder, "accompaniment.wav"), accompaniment, track.rate)
        if not per_track:
            raise EvaluationError("no song could be scored: every one has a silent source")
        medians = median_over_tracks(per_track)
        write_json(args.out, {"checkpoint": os.path.abspath(checkpoint), "root": root,
                              "reconstruction": args.reconstruction, "wiener_iterations": args.wiener,
                              "network_input": args.network_input,
                              "windows": "1 s, BSS Eval v4 (museval)", "median": medians,
                              "tracks": per_track})
    except UserError as err:
        sys.exit(f"error: {err}")
    except OSError as err:
        sys.exit(f"error: {cannot_write(err, args.out, 'pick another --out or --estimates-dir')}")
    except KeyboardInterrupt:  # every file is written whole or not at all (files.atomic_path)
        print(f"Interrupted: no scores written to {args.out} (the estimates written so far are complete).",
              file=sys.stderr)
        sys.exit(130)
    print("\n".join(format_tables(per_track, medians)))
    print(f"Scores of {len(per_track)} song{'' if len(per_track) == 1 else 's'} written to {args.out}"
          + (f"; estimates in {args.estimates_dir}" if args.estimates_dir else ""))


if __name__ == "__main__":
    cli.run_command(main)
