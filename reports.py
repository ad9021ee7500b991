"""What a training run writes for its reader: TensorBoard, history.csv and loss_curve.png.

TensorBoard: one folder per run (kept on --resume), laid out for a lab report.
Lines drawn on one chart are sub-runs (train/, valid/, constant_mask/,
mixture/, oracle/) writing the same tag:

    epoch/loss (x 1e-3)           train, valid and constant_mask (the baseline to beat)
    epoch/vocals SDR (dB)         valid (the model), mixture (the floor), oracle (the ceiling)
    step/loss (x 1e-3)            train, every batch
    step/learning rate            train, every batch: a halving reads as a step
    speed/patches per second      per epoch
    figures/loss curve            loss_curve.png's figure (all epochs, best marked)
    figures/mix, mask, vocals     a fixed validation patch (epoch 1, every --figure-every, last)
    audio 1 mix, audio 2 estimated vocals, audio 3 true vocals
                                  that patch, at one loudness, to hear what the mask does
    config/text_summary           the run's flags (text, once; add_text appends /text_summary)

The two epoch charts come first, side by side. Losses are shown x 1000 (0.85
for 0.00085): TensorBoard's axis labels are cut off for numbers as small as
the raw ones. Epochs without an SDR (--sdr-every) have no point on its chart.
"""

import contextlib
import csv
import json
import math
import os
import shlex
import sys
import threading

import numpy as np
import torch
from tensorboard.compat.tensorflow_stub.errors import OpError
from torch.utils.tensorboard import SummaryWriter

from spectral import istft
from cli import pasteable, runnable
from figures import close_figure, loss_curve_figure, separation_panels, spectrogram_figure
from files import DiskFullError, atomic_path, write_json

_LOSS_SCALE = 1000
# TensorBoard's runs (a folder each): "valid" is the model kept (averaging.py), "valid_trained" the weights as trained
LINES = ("train", "valid", "valid_trained", "constant_mask", "mixture", "oracle")
LOSS_LINES = {"train": "train_loss", "valid": "valid_loss", "valid_trained": "trained_valid_loss",
              "constant_mask": "constant_mask_loss"}
SDR_LINES = {"valid": "valid_sdr", "mixture": "mixture_sdr", "oracle": "oracle_sdr"}


# What only reports a run (TensorBoard, history.csv, loss_curve.png, config.json) may fail to be written
# without stopping it: a full or read-only disk, a logs folder deleted while the run trains. Such a
# failure is one warning line (report_only), and training goes on; a checkpoint that cannot be written
# ends the run instead (train.py), the last good one kept.
_REPORT_ERRORS = (OSError, DiskFullError, OpError)


@contextlib.contextmanager
def report_only(what, warned):
    """Run a block that writes `what`, a report: if it fails, one warning line (once per `what` in the
    set `warned`) and the caller goes on."""
    try:
        yield
    except _REPORT_ERRORS as err:
        if what not in warned:
            warned.add(what)
            reason = str(err) if isinstance(err, DiskFullError) else getattr(err, "strerror", None) or str(err)
            print(f"warning: could not write {what} ({reason}); training goes on", file=sys.stderr, flush=True)


class RunLog:
    """The TensorBoard writers of one run: the run's own folder and its three loss lines.

    A resumed run opens them at the step and epoch it starts from: TensorBoard
    then hides whatever a killed run had logged beyond those (purge_step), so
    no chart goes back on itself. The per-step chart counts steps, the others
    epochs. Used as a context manager, it closes the writers on the way out.

    Every write goes through `add`, which never stops the run: TensorBoard's
    writer thread fails on a folder deleted or made read-only under it, and
    raises that again at the next write; `add` then warns once, drops the
    writers and opens new ones at the following write, which makes the
    folder again.
    """

    def __init__(self, run_dir, step=0, epoch=0, config=None):
        self.run_dir, self.writers, self.warned = run_dir, {}, set()
        self.config = config  # config.json's content (write_config)
        threading.excepthook = _quiet_tensorboard_threads
        with report_only(f"the TensorBoard log in {run_dir}", self.warned):
            self._open(step, epoch)

    def _open(self, step=0, epoch=0):
        """Open every writer, or none: one that fails to open closes those made before it, and the next
        `add` tries again (a half-open set would have no writer for some line)."""
        def writer(folder, done):
            return SummaryWriter(folder, purge_step=done + 1 if done else None)

        try:
            self.writers["run"] = writer(self.run_dir, epoch)
            for name in LINES:
                self.writers[name] = writer(os.path.join(self.run_dir, name), step if name == "train" else epoch)
        except _REPORT_ERRORS:
            self.close()
            raise

    def write_config(self):
        """config.json (the run's flags, model and signal) in the run's folder if it is not there: a failed
        write is one warning, and log_epoch tries again every epoch."""
        path = os.path.join(self.run_dir, "config.json")
        if self.config is None or os.path.exists(path):
            return
        with report_only(f"config.json in {self.run_dir}", self.warned):
            write_json(path, self.config)

    def add(self, line, method, *args, **kwargs):
        """writers[line].method(*args, **kwargs): `line` is one of LINES, or "run" for the run's own folder."""
        with report_only(f"the TensorBoard log in {self.run_dir}", self.warned):
            if not self.writers:
                self._open()
            try:
                getattr(self.writers[line], method)(*args, **kwargs)
            except _REPORT_ERRORS:
                self.close()
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def step(self, loss, lr, step):
        """One optimizer step's loss and learning rate (the train line, purged by step on resume)."""
        self.add("train", "add_scalar", "step/loss (x 1e-3)", loss * _LOSS_SCALE, step)
        self.add("train", "add_scalar", "step/learning rate", lr, step)

    def flush(self):
        for line in list(self.writers):
            self.add(line, "flush")

    def close(self):
        """Close every writer; one that cannot write what it still holds is dropped, with the log's one
        warning (report_only: none if `add` has warned already)."""
        writers, self.writers = self.writers, {}
        for writer in writers.values():
            with report_only(f"the TensorBoard log in {self.run_dir}", self.warned):
                writer.close()


def _quiet_tensorboard_threads(args, previous=threading.excepthook):
    """threading.excepthook: TensorBoard's writer thread, whose failure its writer raises again in the main
    thread (RunLog.add warns about it), ends without a traceback; any other thread as before."""
    if not type(args.thread).__module__.startswith("tensorboard."):
        previous(args)


def open_run_log(save_dir, run, run_config, model_config, signal_config, resumed):
    """The run's TensorBoard log (run: bookkeeping.RunState, whose run_dir is relative to `save_dir`) with
    its config.json; a new run also gets its flags as text."""
    config = {"args": run_config, "model": model_config.to_dict(), "signal": signal_config.to_dict()}
    log = RunLog(os.path.join(save_dir, run.run_dir), run.step, run.epoch, config)
    log.write_config()
    if not resumed:
        log.add("run", "add_text", "config", "```\n" + json.dumps(run_config, indent=2) + "\n```", 0)
    return log


def log_epoch(log, row, loss_curve, with_figures):
    """The epoch's scalars (row: its history row), and with_figures the loss curve too.

    `loss_curve` is the figure write_history has just saved as loss_curve.png
    (drawing it is the slow part, so it is drawn once for both); it is closed
    here, since pyplot keeps every figure alive until then.
    """
    epoch = row["epoch"]
    log.write_config()  # if an earlier try failed
    for line, key in LOSS_LINES.items():
        if key in row:  # not trained_valid_loss in the rows of a run resumed from an older version
            log.add(line, "add_scalar", "epoch/loss (x 1e-3)", row[key] * _LOSS_SCALE, epoch)
    for line, key in SDR_LINES.items():
        if math.isfinite(row[key]):  # undefined: no point rather than a NaN TensorBoard cannot draw
            log.add(line, "add_scalar", "epoch/vocals SDR (dB)", row[key], epoch)
    log.add("run", "add_scalar", "speed/patches per second", row["patches_per_s"], epoch)
    if with_figures:
        log.add("run", "add_figure", "figures/loss curve", loss_curve, epoch)  # closes it too
    close_figure(loss_curve)
    log.flush()


def log_example(log, model, patch, signal_config, device, epoch):
    """Figure of mix / predicted mask / estimated vocals / true vocals for one
    fixed validation patch (the panels of inference.py's separation.png, on a
    grid), and the three as audio (the estimate with the mix's phase), all
    divided by the mix's peak so that they play at the same loudness."""
    vocals_spec, accompaniment_spec = (torch.from_numpy(np.array(p)) for p in patch)  # complex (F, T) each
    mix_spec = vocals_spec + accompaniment_spec  # (F, T)
    model.eval()
    with torch.inference_mode():
        mask = model(mix_spec.abs()[None].to(device))[0].float().cpu()  # (F, T)
    panels = separation_panels(mix_spec.abs(), mask, vocals_spec.abs())
    seconds = patch.shape[-1] * signal_config.hop_length / signal_config.sample_rate
    fig = spectrogram_figure(mix_spec.abs(), panels, seconds, signal_config.sample_rate / 2, grid=True)
    log.add("run", "add_figure", "figures/mix, mask, vocals", fig, epoch)
    length = (patch.shape[-1] - 1) * signal_config.hop_length
    sounds = {"1 mix": mix_spec, "2 estimated vocals": mask * mix_spec, "3 true vocals": vocals_spec}
    waves = {name: istft(spec, signal_config, length) for name, spec in sounds.items()}  # (samples,) each
    peak = waves["1 mix"].abs().max().clamp(min=1e-8)
    for name, wave in waves.items():
        log.add("run", "add_audio", f"audio {name}", (wave / peak).clamp(-1, 1)[None], epoch,  # (1, samples)
                sample_rate=signal_config.sample_rate)


def write_history(save_dir, history, best_epoch, warned):
    """history.csv and loss_curve.png (best_epoch: best_model.pth's, marked), both rewritten after every
    epoch, reports only (report_only, `warned`); returns loss_curve.png's figure. An undefined SDR is
    written as nan."""
    columns = list(dict.fromkeys(key for row in history for key in row))  # a run resumed from an older version
    with report_only(os.path.join(save_dir, "history.csv"), warned):
        with atomic_path(os.path.join(save_dir, "history.csv")) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(history)
    fig = loss_curve_figure(history, best_epoch)
    with report_only(os.path.join(save_dir, "loss_curve.png"), warned):
        with atomic_path(os.path.join(save_dir, "loss_curve.png")) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    return fig


def data_lines(split, train_patches, valid_patches, processes, batch_size):
    """The lines that say what a run trains on (split: songs.DataSplit), and a warning for a batch larger
    than an epoch: every epoch would then be a single step, and the run would seem not to learn."""
    per_process = train_patches // processes
    line = (f"Data: {split.source}, {len(split.train)} training songs ({train_patches} random patches per epoch"
            + (f", {per_process} per process" if processes > 1 else "") + f"), {len(split.valid)} validation "
            f"songs (tiled by {valid_patches} patches)"
            + (f", {len(split.skipped)} left out (see above)" if split.skipped else ""))
    if batch_size > per_process:
        line += (f"\nWarning: --batch-size {batch_size} is more than the {per_process} patches of an epoch, so each "
                 "epoch is a single step; lower --batch-size (or raise --samples-per-track) for more steps.")
    return line


def _sdr_text(value):
    """An SDR for a console line: '7.85 dB', or 'n/a' where it is undefined (silent vocals, not scored)."""
    return f"{value:.2f} dB" if math.isfinite(value) else "n/a"


def reference_line(reference_sdr):
    """The line that introduces the SDR's floor and ceiling (bookkeeping.RunState.reference_sdr)."""
    return (f"Validation vocals SDR (whole songs, 8192 Hz): mixture {_sdr_text(reference_sdr['mixture'])} "
            f"(the floor), oracle ratio mask {_sdr_text(reference_sdr['oracle'])} (the ceiling)")


def epoch_line(run, epochs):
    """The console line of the epoch just recorded in `run` (bookkeeping.RunState), with the time the run
    still needs.

    The estimate is the mean of the last 5 epochs (the first one is often
    slower: caches, allocator, CPU clocks) times the epochs left.
    """
    row = run.history[-1]
    recent = [r["seconds"] for r in run.history[-5:]]
    left = (epochs - row["epoch"]) * sum(recent) / len(recent)
    eta = "" if row["epoch"] >= epochs else f"  about {left:.0f} s left" if left < 90 else \
        f"  about {left / 60:.1f} min left"
    return (f"epoch {row['epoch']:3d}/{epochs}  train {row['train_loss']:.5f}  valid {row['valid_loss']:.5f}  "
            f"SDR {_sdr_text(row['valid_sdr'])}  best {run.best_valid_loss:.5f} (epoch {run.best_epoch})  "
            f"{row['seconds']:5.1f} s  {row['patches_per_s']:5.1f} patches/s{eta}")


def interrupted_line(checkpoint, run, script, save_dir):
    """What Ctrl-C ends a run with: what was saved (run: bookkeeping.RunState), and the command that goes on."""
    epochs = run.epoch
    return (f"\nInterrupted: saved {checkpoint} after {epochs} epoch{'' if epochs == 1 else 's'} and {run.step} "
            f"steps; continue with: {runnable()} {pasteable(script)} --resume --save-dir {shlex.quote(save_dir)}")


def run_summary(run, save_dir, seconds, lr, steps_per_epoch):
    """The closing lines of a run (bookkeeping.RunState): time, the best epochs against the baseline
    and the SDR's floor and ceiling, where everything is; and when the model has not learned, the
    likely cause among those the flags show."""
    baseline, learned = "the constant-mask baseline is 0 here, so no ratio", True  # songs whose mix is their vocals
    if run.constant_mask_loss:
        ratio = run.best_valid_loss / run.constant_mask_loss
        baseline, learned = f"{ratio:.2f} x the constant-mask baseline", ratio <= 0.95
    reference = run.reference_sdr or {"mixture": math.nan, "oracle": math.nan}
    sdr = f"best validation SDR {_sdr_text(run.best_valid_sdr)} at epoch {run.best_sdr_epoch} (mixture " \
          f"{_sdr_text(reference['mixture'])}, oracle {_sdr_text(reference['oracle'])})" if run.best_sdr_epoch else \
          "no validation SDR (the validation songs' vocals are silent)"
    lines = [f"Done in {seconds / 60:.1f} min: best validation loss {run.best_valid_loss:.5f} at epoch "
             f"{run.best_epoch} ({baseline}), saved as best_model.pth; {sdr}."]
    if not learned:
        lines.append("That is no better than a constant mask: the model has not learned; " + not_learned_advice(
            lr, steps_per_epoch, run.epoch))
    lines.append(f"Checkpoints in {os.path.join(save_dir, '')}, loss curve in "
                 f"{os.path.join(save_dir, 'loss_curve.png')}; TensorBoard: {runnable('tensorboard')} --logdir "
                 f"{shlex.quote(os.path.join(save_dir, 'logs'))}")
    return "\n".join(lines)


_HIGH_LR = 1e-2  # 10 x the default: Adam's steps are then too large for this network to leave the constant mask
_FEW_STEPS = 200  # optimizer steps in all: fewer than this, and no learning rate has had the time to work


def not_learned_advice(lr, steps_per_epoch, epochs):
    """What to change when a run ends no better than the constant mask, by what its flags show."""
    if lr >= _HIGH_LR:
        return f"--lr {lr:g} is high (the default is 1e-3): lower it."
    if steps_per_epoch * epochs < _FEW_STEPS:
        return (f"it took only {steps_per_epoch * epochs} optimizer steps ({steps_per_epoch} per epoch): lower "
                "--batch-size, or train longer; see docs/troubleshooting.md.")
    return "train longer, or see docs/troubleshooting.md."
