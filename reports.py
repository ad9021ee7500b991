"""What a training run writes for its reader: TensorBoard, history.csv and loss_curve.png.

TensorBoard (one run folder per run, kept on --resume):
    loss/train_step      every batch
    loss/train, loss/valid, lr, throughput/patches_per_s    every epoch
    loss/valid_constant_mask    the baseline, once
    validation/mix_mask_vocals  figure of a fixed validation patch (epoch 1, every --figure-every, last)
    validation/estimated_vocals that patch's estimated vocals, as audio
    config (text) and hparams   the run's flags and its best validation loss
"""

import csv
import json
import os

import numpy as np
import torch

from audio import istft
from files import atomic_path


def open_writer(state, run_config, model_config, signal_config, resumed):
    """The run's TensorBoard writer; a new run also gets config.json, the flags as text and the baseline."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(state["run_dir"])
    if not resumed:
        with open(os.path.join(state["run_dir"], "config.json"), "w") as f:
            json.dump({"args": run_config, "model": model_config.to_dict(), "signal": signal_config.to_dict()},
                      f, indent=2)
        writer.add_text("config", "```\n" + json.dumps(run_config, indent=2) + "\n```", 0)
        writer.add_scalar("loss/valid_constant_mask", state["constant_mask_loss"], 0)
    return writer


def log_epoch(writer, row, epochs, figure_every, draw_example):
    """The epoch's scalars, and every `figure_every` epochs the example figure and audio."""
    epoch = row["epoch"]
    for tag, key in (("loss/train", "train_loss"), ("loss/valid", "valid_loss"), ("lr", "lr"),
                     ("throughput/patches_per_s", "patches_per_s")):
        writer.add_scalar(tag, row[key], epoch)
    if epoch == 1 or epoch % figure_every == 0 or epoch == epochs:
        draw_example(epoch)
    writer.flush()


def log_example(writer, model, patch, signal_config, device, epoch):
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
    fig = spectrogram_figure(mix_spec.abs(), panels, seconds, signal_config.sample_rate / 2, columns=True)
    writer.add_figure("validation/mix_mask_vocals", fig, epoch)
    waveform = istft(mask * mix_spec, signal_config, length=(patch.shape[-1] - 1) * signal_config.hop_length)
    peak = waveform.abs().max().clamp(min=1e-8)
    writer.add_audio("validation/estimated_vocals", (waveform / peak)[None], epoch,  # (1, samples)
                     sample_rate=signal_config.sample_rate)


def write_history(save_dir, history):
    """history.csv and loss_curve.png, both rewritten after every epoch."""
    from figures import loss_curve_figure

    with atomic_path(os.path.join(save_dir, "history.csv")) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    fig = loss_curve_figure(history)
    with atomic_path(os.path.join(save_dir, "loss_curve.png")) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    fig.clf()  # matplotlib keeps every figure alive until closed; a long run makes one per epoch


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
