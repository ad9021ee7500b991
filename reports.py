"""What a training run writes for its reader: TensorBoard, history.csv and loss_curve.png.

TensorBoard: one folder per run (kept on --resume), laid out for a lab report.
The run's three loss lines are three sub-runs, train/, valid/ and
constant_mask/, writing the same tag, so TensorBoard draws them on one chart:

    loss/per epoch (x 1e-3)       train, valid and constant_mask (the baseline)
    loss/per step (x 1e-3)        train, every batch
    training/learning rate, training/patches per second       per epoch
    figures/loss curve            loss_curve.png's figure (all epochs, best marked)
    figures/mix, mask, vocals     a fixed validation patch (epoch 1, every --figure-every, last)
    figures/estimated vocals      that patch's estimated vocals, as audio
    config                        the run's flags (text, once)

Losses are shown x 1000 (0.85 for 0.00085): TensorBoard's axis labels are
cut off for numbers as small as the raw ones.
"""

import csv
import json
import os

import numpy as np
import torch

from audio import istft
from files import atomic_path

LOSS_SCALE = 1000
LINES = ("train", "valid", "constant_mask")


class RunLog:
    """The TensorBoard writers of one run: the run's own folder and its three loss lines."""

    def __init__(self, run_dir):
        from torch.utils.tensorboard import SummaryWriter

        self.run = SummaryWriter(run_dir)
        self.lines = {name: SummaryWriter(os.path.join(run_dir, name)) for name in LINES}

    def step(self, loss, step):
        self.lines["train"].add_scalar("loss/per step (x 1e-3)", loss * LOSS_SCALE, step)

    def flush(self):
        for writer in (self.run, *self.lines.values()):
            writer.flush()

    def close(self):
        for writer in (self.run, *self.lines.values()):
            writer.close()


def open_run_log(state, run_config, model_config, signal_config, resumed):
    """The run's TensorBoard log; a new run also gets config.json and its flags as text."""
    log = RunLog(state["run_dir"])
    if not resumed:
        with open(os.path.join(state["run_dir"], "config.json"), "w") as f:
            json.dump({"args": run_config, "model": model_config.to_dict(), "signal": signal_config.to_dict()},
                      f, indent=2)
        log.run.add_text("config", "```\n" + json.dumps(run_config, indent=2) + "\n```", 0)
    return log


def log_epoch(log, history, epochs, figure_every, draw_example, loss_curve):
    """The epoch's scalars, and every `figure_every` epochs the figures and the audio.

    `loss_curve` is the figure write_history has just saved as loss_curve.png
    (drawing it is the slow part, so it is drawn once for both); it is closed
    here, since pyplot keeps every figure alive until then.
    """
    import matplotlib.pyplot as plt

    row = history[-1]
    epoch = row["epoch"]
    for line, key in zip(LINES, ("train_loss", "valid_loss", "constant_mask_loss")):
        log.lines[line].add_scalar("loss/per epoch (x 1e-3)", row[key] * LOSS_SCALE, epoch)
    log.run.add_scalar("training/learning rate", row["lr"], epoch)
    log.run.add_scalar("training/patches per second", row["patches_per_s"], epoch)
    if epoch == 1 or epoch % figure_every == 0 or epoch == epochs:
        log.run.add_figure("figures/loss curve", loss_curve, epoch)  # closes it too
        draw_example(epoch)
    else:
        plt.close(loss_curve)
    log.flush()


def log_example(log, model, patch, signal_config, device, epoch):
    """Figure of mix / predicted mask / estimated vocals / true vocals for one
    fixed validation patch, plus the estimated vocals as audio (mix phase)."""
    from figures import spectrogram_figure

    vocals_spec, accompaniment_spec = (torch.from_numpy(np.array(p)) for p in patch)  # complex (F, T) each
    mix_spec = vocals_spec + accompaniment_spec  # (F, T)
    model.eval()
    with torch.inference_mode():
        mask = model(mix_spec.abs()[None].to(device))[0].float().cpu()  # (F, T)
    panels = [("mix", mix_spec.abs(), "magnitude"), ("predicted mask", mask, "mask"),
              ("estimated vocals", mask * mix_spec.abs(), "magnitude"), ("true vocals", vocals_spec.abs(), "magnitude")]
    seconds = patch.shape[-1] * signal_config.hop_length / signal_config.sample_rate
    fig = spectrogram_figure(mix_spec.abs(), panels, seconds, signal_config.sample_rate / 2, grid=True)
    log.run.add_figure("figures/mix, mask, vocals", fig, epoch)
    waveform = istft(mask * mix_spec, signal_config, length=(patch.shape[-1] - 1) * signal_config.hop_length)
    peak = waveform.abs().max().clamp(min=1e-8)
    log.run.add_audio("figures/estimated vocals", (waveform / peak)[None], epoch,  # (1, samples)
                     sample_rate=signal_config.sample_rate)


def write_history(save_dir, history):
    """history.csv and loss_curve.png, both rewritten after every epoch; returns loss_curve.png's figure."""
    from figures import loss_curve_figure

    with atomic_path(os.path.join(save_dir, "history.csv")) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    fig = loss_curve_figure(history)
    with atomic_path(os.path.join(save_dir, "loss_curve.png")) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return fig


def epoch_line(state, epochs):
    """The console line of the epoch just recorded in `state`, with the time the run still needs.

    The estimate is the mean of the last 5 epochs (the first one is often
    slower: caches, allocator, CPU clocks) times the epochs left.
    """
    row = state["history"][-1]
    recent = [r["seconds"] for r in state["history"][-5:]]
    left = (epochs - row["epoch"]) * sum(recent) / len(recent)
    eta = "" if row["epoch"] >= epochs else f"  about {left:.0f} s left" if left < 90 else \
        f"  about {left / 60:.1f} min left"
    return (f"epoch {row['epoch']:3d}/{epochs}  train {row['train_loss']:.5f}  valid {row['valid_loss']:.5f}  "
            f"best {state['best_valid_loss']:.5f} (epoch {state['best_epoch']})  "
            f"{row['seconds']:5.1f} s  {row['patches_per_s']:5.1f} patches/s{eta}")
