"""Which epoch separates best: the lowest validation loss, or the highest validation SDR?

    python benchmarks/bench_selection.py --seeds 42 43 44            # train (once), score, report
    python benchmarks/bench_selection.py --seeds 42 43 44 --every 2  # score every 2nd epoch (and the chosen ones)
    python benchmarks/bench_selection.py --seeds 42 43 44 --train-args --precision bf16 --runs-dir runs/bf16
    python benchmarks/bench_selection.py --every 100 --other-seed 7 --runs-dir runs/base   # a fresh other set

For each seed it trains the default recipe once (`python train.py --seed S
--checkpoint-every 1`, which keeps every epoch's weights; skipped when the
run is already there), then reads the run's history.csv and scores epochs on
the three test sets of bench_quality.py (toy, real, other), which played no
part in training or in choosing anything:

    museval   the vocals SDR of evaluate.py (BSS Eval v4, 1 s windows, median
              over windows then songs), of the default separation (full band)
    global    train.py's cheap SDR (metrics.model_sdr: the whole song at
              8192 Hz, mono, 10 log10(sum s^2 / sum (s - s_hat)^2), median over
              songs), computed on the same test songs

It reports:

1. What each rule picks (best_model.pth by validation loss, by validation
   SDR, and the last epoch; and where train.py ran with --average-weights,
   each moving average of the weights at the epoch of its own lowest
   validation loss), scored by museval on each test set: mean (min..max)
   over seeds.
2. How well what training watches ranks the epochs the way museval on the
   test sets does: Spearman's rank correlation over the scored epochs of a
   run, between museval's SDR on a test set and (a) the global SDR on the same
   songs, (b) the validation SDR, (c) minus the validation loss; mean
   (min..max) over seeds.

Scores are kept in RUNS_DIR/seedS/scores.json, so a second call scores only
what is missing. --toy-root scores on the test songs of another version's toy
set, --other-seed on another set of the other synthesiser (one that chose
nothing); the tables name the sets they scored. The figures name the device train.py trains on, the precision
it computes in there, and the CPU class.
"""

import argparse
import csv
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_quality import add_set_flags, cell, score, set_labels, test_sets, train_seeds  # noqa: E402

SETS = ("toy", "real", "other")
RULES = ("lowest validation loss", "highest validation SDR", "last epoch")
AVERAGED = "averaged_valid_loss_"  # history.csv's columns of train.py --average-weights: one per decay


def read_history(save_dir):
    """history.csv of a run as {column: [float per epoch]}."""
    with open(os.path.join(save_dir, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


def picks(history):
    """{rule: score key} for one run: the epoch, or for a moving average of the weights 'epoch/averaged DECAY'."""
    epochs = [int(e) for e in history["epoch"]]
    sdr = np.array(history["valid_sdr"])
    chosen = {"lowest validation loss": str(epochs[int(np.argmin(history["valid_loss"]))]),
              "highest validation SDR": str(epochs[int(np.nanargmax(sdr))]),
              "last epoch": str(epochs[-1])}
    for column in (c for c in history if c.startswith(AVERAGED)):
        decay = column[len(AVERAGED):]
        chosen[f"average {decay}, lowest validation loss"] = \
            f"{epochs[int(np.argmin(history[column]))]}/averaged {decay}"
    return chosen


def song_features(songs, signal_config):
    """train.py's features (data.compute_features) of a test set's songs."""
    from data import compute_features

    return [compute_features(mix, vocals, rate, signal_config) for _, rate, mix, vocals, _ in songs]


def score_epoch(checkpoint, sets, features, averaged=None):
    """{set: {"museval": dB, "global": dB}} of one checkpoint, or of its moving average of the weights
    of decay `averaged` (a string, as in history.csv)."""
    from checkpoints import load_checkpoint, ready_model
    from metrics import finite_median, model_sdr
    from separation import separate

    state = load_checkpoint(checkpoint)
    if averaged is not None:
        state = dict(state, model=next(a["model"] for a in state["averaged"] if f"{a['decay']:g}" == averaged))
    model, signal_config = ready_model(state)
    out = {}
    for name, songs in sets.items():
        museval = [score(song, separate(model, signal_config, song[2], song[1]))["SDR"] for song in songs]
        out[name] = {"museval": finite_median(museval),
                     "global": model_sdr(model, features[name], signal_config)}
    return out


def spearman(a, b):
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    p.add_argument("--runs-dir", default=os.path.join(ROOT, "runs", "selection"), help="where the seeds train")
    p.add_argument("--every", type=int, default=1, help="score every this many epochs (the picked ones always)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--train-args", nargs=argparse.REMAINDER, default=[],
                   help="more train.py flags (must come last)")
    add_set_flags(p)
    args = p.parse_args()

    import torch

    from audio import SignalConfig
    from cli import describe_cpu, pick_device, pick_precision

    capability = torch.backends.cpu.get_cpu_capability()
    train_seeds(args.seeds, args.runs_dir, ["--checkpoint-every", "1"] + args.train_args)
    signal_config = SignalConfig()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-selection-") as workdir:
        sets = test_sets(SETS, workdir, args.toy_root, args.other_seed)
        labels = set_labels(sets, args.toy_root, args.other_seed)
        sets = {labels[name]: songs for name, songs in sets.items()}
        features = {name: song_features(songs, signal_config) for name, songs in sets.items()}
        for seed in args.seeds:
            save_dir = os.path.join(args.runs_dir, f"seed{seed}")
            history = read_history(save_dir)
            chosen = picks(history)
            cache = os.path.join(save_dir, "scores.json")
            scores = json.load(open(cache)) if os.path.exists(cache) else {}
            plain = sorted(set(range(args.every, len(history["epoch"]) + 1, args.every))
                           | {int(key) for key in chosen.values() if "/" not in key})
            for key in [str(e) for e in plain] + sorted(k for k in set(chosen.values()) if "/" in k):
                missing = {name: songs for name, songs in sets.items() if name not in scores.get(key, {})}
                if not missing:
                    continue
                epoch, _, averaged = key.partition("/averaged ")
                scores.setdefault(key, {}).update(score_epoch(
                    os.path.join(save_dir, f"checkpoint_epoch_{epoch}.pth"), missing, features, averaged or None))
                with open(cache, "w") as f:
                    json.dump(scores, f, indent=2)
                print(f"seed {seed} epoch {key:18}  " + "  ".join(
                    f"{s} museval {scores[key][s]['museval']:6.2f} global {scores[key][s]['global']:6.2f}"
                    for s in sets), flush=True)
            runs[seed] = {"history": history, "picks": chosen, "scores": scores, "scored": plain}
    names = list(sets)
    flags = args.train_args
    precision = flags[flags.index("--precision") + 1] if "--precision" in flags else "auto"
    device = pick_device("--cpu" in flags)  # where train_seeds' train.py trains
    computed = "bf16" if pick_precision(precision, device) else "fp32"
    print(f"\n{len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}), train.py --precision {precision} "
          f"({computed} on {device.type} here), CPU {describe_cpu()}; songs per set: "
          + ", ".join(f"{s} {len(sets[s])}" for s in names))

    print("\n1. Vocals SDR (museval, full band, dB) of the epoch each rule picks: mean (min..max) over seeds\n")
    print("| rule | epochs picked | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names))
    for rule in runs[args.seeds[0]]["picks"]:
        keys = [runs[s]["picks"][rule] for s in args.seeds]
        cells = [cell([{"v": runs[s]["scores"][k][name]["museval"]} for s, k in zip(args.seeds, keys)], "v")
                 for name in names]
        print(f"| {rule} | {', '.join(k.split('/')[0] for k in keys)} | " + " | ".join(cells) + " |")

    correlations = {}
    if min(len(run["scored"]) for run in runs.values()) >= 3:
        print(f"\n2. Spearman rank correlation with museval's SDR on each test set, over the scored epochs "
              f"(every {args.every}, plus the picked ones) of each run: mean (min..max) over seeds\n")
        print("| what training watches | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        watched = {"global SDR, same test songs": lambda run, e, name: run["scores"][str(e)][name]["global"],
                   "validation SDR (history.csv)": lambda run, e, name: run["history"]["valid_sdr"][e - 1],
                   "minus validation loss (history.csv)": lambda run, e, name: -run["history"]["valid_loss"][e - 1]}
        for label, value in watched.items():
            cells = []
            for name in names:
                rhos = [{"v": spearman([value(runs[s], e, name) for e in runs[s]["scored"]],
                                       [runs[s]["scores"][str(e)][name]["museval"] for e in runs[s]["scored"]])}
                        for s in args.seeds]
                correlations.setdefault(label, {})[name] = [r["v"] for r in rhos]
                cells.append(cell(rhos, "v"))
            print(f"| {label} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu_capability": capability, "cpu": describe_cpu(), "device": device.type,
                       "precision": precision, "computed_in": computed,
                       "seeds": args.seeds,
                       "runs": {s: {"picks": r["picks"], "scores": r["scores"]} for s, r in runs.items()},
                       "correlations": correlations}, f, indent=2)


if __name__ == "__main__":
    main()
