"""Train the singing-voice U-Net with the lab's masked L1 loss.

    python train.py                                   # default toy data, 20 epochs
    python train.py --epochs 10 --n-songs 5           # the lab's quick run
    python train.py --root ~/MUSDB18 --n-songs all    # real data
    python train.py --resume                          # continue the run in --save-dir
    tensorboard --logdir checkpoints/logs             # watch it converge

Writes, under --save-dir (default checkpoints/):
    best_model.pth            lowest validation loss so far (--best-by sdr: highest validation SDR)
    final_model.pth           the model after the last epoch
    checkpoint_epoch_5.pth    every 5 epochs (10, 15, ...)
    last_model.pth            the newest state, where --resume starts
    history.csv, loss_curve.png, logs/YYYYMMDD_HHMMSS/ (TensorBoard)

The file reads top to bottom: the loss, the flags, one epoch of training and
one of validation, the run's bookkeeping (RunState), then the run, whose loop
is one epoch: train, validate (the loss, then the vocals SDR of the whole
validation songs), count, save, report. reports.py writes what
the run shows its reader, checkpoints.py the checkpoint files. Several
processes (torchrun) are all in distributed.py: `dist` calls do nothing in a
single process, and `dist.print` prints on the first process only.
"""

import argparse
import itertools
import math
import os
import random
import shlex
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from audio import SignalConfig
from checkpoints import (build_checkpoint, find_latest_checkpoint, load_checkpoint, prepare_save_dir, save_checkpoint,
                         save_epoch)
from cli import (ArgumentParser, StopRequests, UserError, add_root_flag, add_training_songs_flag, bounded_number,
                 describe_device, pasteable, pick_device, pick_precision, progress_bar, runnable)
from data import DEFAULT_CACHE_DIR, PatchDataset, best_constant_mask_loss, crop, training_features
from distributed import Distributed
from files import cannot_write
from reports import epoch_line, log_epoch, log_example, open_run_log, reference_line, run_summary, write_history
from separation import model_sdr, reference_sdr
from unet_model import UNet, UNetConfig, count_parameters


class L1Loss(nn.Module):
    """The lab's loss L = || mask * X - Y ||_1, averaged over every element.

    X is the mix magnitude, Y the true vocals magnitude; the mean (not the
    sum) keeps the value independent of batch and patch size.
    """

    def forward(self, mask, mix_mag, vocals_mag):
        return torch.mean(torch.abs(mask * mix_mag - vocals_mag))


class TrainingError(UserError):
    """A problem that stops training."""


# --- Flags ---

def build_parser():
    p = ArgumentParser(description="Train the singing-voice U-Net (masked L1 loss) on MUSDB18 or the toy set.")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=bounded_number(int, 1, 100_000), default=20, help="total number of epochs")
    g.add_argument("--batch-size", type=bounded_number(int, 1, 4096), default=16, help="patches per batch")
    g.add_argument("--lr", type=bounded_number(float, 0.0, 1.0, low_open=True), default=1e-3,
                   help="Adam learning rate (the peak one with --lr-schedule cosine)")
    g.add_argument("--lr-schedule", choices=("plateau", "cosine"), default="plateau",
                   help="plateau: halve it after 3 epochs without a better validation loss; cosine: warm up "
                        "over the first epoch, then decay to 1/100 of --lr at the last step")
    g.add_argument("--samples-per-track", type=bounded_number(int, 1, 100_000), default=48,
                   help="random patches drawn from each training song per epoch")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True, help="random gain per "
                   "source (0.25-1.25) and, half the time, the vocals over another song's accompaniment")
    g.add_argument("--augment-eq", action=argparse.BooleanOptionalAction, default=False,
                   help="also tilt the accompaniment's spectrum by up to +-6 dB across the band (an EQ change)")
    g.add_argument("--seed", type=bounded_number(int, 0, 2**32 - 1), default=42,
                   help="seed for python, numpy and torch")
    g.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is available")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16 autocast for the training steps (validation stays fp32); auto: bf16 "
                        "where the hardware computes it natively (recent x86 CPUs, Ampere+ GPUs)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="channels_last memory layout for the convolutions (faster on CPU and GPU)")
    g.add_argument("--num-workers", type=bounded_number(int, 0, 256), default=0, help="DataLoader worker "
                   "processes (patches come from a memory-mapped cache: 0 is usually fastest on a laptop)")
    g.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                   help="continue a run: a checkpoint path, or no value for the newest in --save-dir")
    g.add_argument("--max-batches", type=bounded_number(int, 1, 10**9), default=None,
                   help="stop each epoch after this many batches (quick checks)")
    g.add_argument("--sdr-every", type=bounded_number(int, 1, 100_000), default=1,
                   help="score the validation songs' vocals SDR every this many epochs (and after the last)")
    g.add_argument("--best-by", choices=("loss", "sdr"), default="loss",
                   help="what makes best_model.pth: the lowest validation loss (the lab's) or the highest "
                        "validation SDR (docs/training.md compares the two)")
    g.add_argument("--quiet", action="store_true", help="no progress bars; the epoch lines stay")

    g = p.add_argument_group("data")
    add_root_flag(g)
    add_training_songs_flag(g)
    g.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="cache of decoded spectrograms")
    g.add_argument("--decode-jobs", type=bounded_number(int, 1, 256), default=min(os.cpu_count() or 1, 4),
                   help="songs decoded at once on the first run (each in a process of its own)")

    g = p.add_argument_group("output")
    g.add_argument("--save-dir", default="checkpoints", help="checkpoints, history and TensorBoard logs")
    g.add_argument("--checkpoint-every", type=bounded_number(int, 1, 100_000), default=5,
                   help="write checkpoint_epoch_N.pth every this many epochs")
    g.add_argument("--figure-every", type=bounded_number(int, 1, 100_000), default=5,
                   help="log the mix/mask/vocals figure and audio to TensorBoard every this many epochs")

    defaults = UNetConfig()
    g = p.add_argument_group("model (stored in the checkpoint; a resumed run keeps its own)")
    g.add_argument("--channels", type=bounded_number(int, 1, 2048), nargs="+", default=list(defaults.channels),
                   help="encoder widths, one per level")
    g.add_argument("--kernel-size", type=bounded_number(int, 1, 31), default=defaults.kernel_size,
                   help="odd kernel size of every convolution")
    g.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=defaults.batch_norm,
                   help="BatchNorm after each convolution (the paper's choice)")
    g.add_argument("--decoder-activation", choices=("leaky_relu", "relu"),
                   default=defaults.decoder_activation, help="lab: leaky_relu, paper: relu")
    g.add_argument("--dropout", type=bounded_number(float, 0.0, 0.99), default=defaults.dropout,
                   help="dropout in the first 3 decoder blocks (paper: 0.5)")
    g.add_argument("--input-compression", choices=("none", "log"), default=defaults.input_compression,
                   help="what the network sees: the scaled magnitude (lab) or log(1 + 1e4 x) of it")
    return p


def get_args(argv=None):
    """The flags. With --resume, the resumed run's own flags are the starting point
    and those typed now override them; args.resume is then the checkpoint's path."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume:
        path = find_latest_checkpoint(args.save_dir) if args.resume == "latest" else args.resume
        if path is None:
            raise TrainingError(f"--resume found no checkpoint in {args.save_dir}; train without --resume first")
        flags = vars(parser.parse_args([]))  # every flag, to skip what an older version stored
        stored = {key: value for key, value in load_checkpoint(path, flag="--resume")["args"].items() if key in flags}
        args = parser.parse_args(argv, namespace=argparse.Namespace(**stored))  # typed flags replace stored ones
        args.resume = path
    return args


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- One epoch of training, one of validation ---

def train_one_epoch(model, loader, optimizer, loss_fn, device, run, *, batches, amp_dtype=None,
                    step_scheduler=None, log=None, stop=None, progress=False):
    """`batches` steps over the training patches: an epoch, or the rest of an interrupted one.

    Each step is counted in `run` (RunState) as soon as it is taken, so that
    an interrupt between two steps (stop.check()) leaves `run` matching the
    weights, the optimizer and the scheduler.

    Args:
        amp_dtype: torch.bfloat16 for autocast, None for fp32.
        step_scheduler: a learning-rate schedule stepped after every batch (cosine), or None.
        log: the run's TensorBoard log (reports.RunLog), which gets every step's loss.
    Returns:
        patches per second.
    """
    model.train()
    start, patches_before = time.time(), run.epoch_patches
    bar = progress_bar(itertools.islice(loader, batches), not progress, total=batches, desc=f"epoch {run.epoch + 1}",
                       leave=False, unit="batch")
    for mix_mag, vocals_mag in bar:
        mix_mag = mix_mag.to(device, non_blocking=True)  # (B, F, T)
        vocals_mag = vocals_mag.to(device, non_blocking=True)  # (B, F, T)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            mask = model(mix_mag)  # (B, F, T)
        loss = loss_fn(mask.float(), mix_mag, vocals_mag)  # the loss itself in fp32
        value = loss.item()  # one host sync per step
        if not math.isfinite(value):
            raise TrainingError(f"the loss became {value} at epoch {run.epoch + 1}, step {run.step + 1}; the "
                                "checkpoints already written are intact: try a lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step_scheduler:
            step_scheduler.step()
        run.count_step(value, len(mix_mag))  # counted at once: Ctrl-C now saves weights and step together
        if log:
            log.step(value, optimizer.param_groups[0]["lr"], run.step)
        bar.set_postfix(loss=f"{run.epoch_loss / run.epoch_patches:.5f}")
        if stop:
            stop.check()  # Ctrl-C or SIGTERM: raises KeyboardInterrupt here, between two steps
    return (run.epoch_patches - patches_before) / max(time.time() - start, 1e-9)


@torch.inference_mode()
def validate(model, loader, loss_fn, device, progress=False):
    """Mean validation loss over the fixed validation tiling."""
    model.eval()
    total, count = 0.0, 0
    for mix_mag, vocals_mag in progress_bar(loader, not progress, desc="validation", leave=False, unit="batch"):
        mix_mag, vocals_mag = mix_mag.to(device), vocals_mag.to(device)  # (B, F, T) each
        total += loss_fn(model(mix_mag), mix_mag, vocals_mag).item() * len(mix_mag)
        count += len(mix_mag)
    return total / count


# --- The run's bookkeeping, and what a checkpoint holds ---

@dataclass
class RunState:
    """What a run counts, saved field by field in every checkpoint and restored by --resume."""

    run_dir: str  # its TensorBoard folder, logs/YYYYMMDD_HHMMSS (kept on --resume)
    epoch: int = 0  # epochs done
    step: int = 0  # optimizer steps done: the x axis of the per-step chart and of the cosine schedule
    best_valid_loss: float = math.inf
    best_epoch: int = 0  # the epoch of best_valid_loss
    best_valid_sdr: float = -math.inf  # median over the validation songs, dB
    best_sdr_epoch: int = 0
    constant_mask_loss: float = None  # the baseline, measured once per run
    reference_sdr: dict = None  # {"mixture": floor, "oracle": ceiling} SDRs, measured once per run
    history: list = field(default_factory=list)  # one row per epoch (history.csv)
    # The epoch in progress: its batches done and their loss summed over patches, non-zero only
    # in a checkpoint saved by Ctrl-C mid-epoch, so that --resume runs only the rest of it.
    epoch_batches: int = 0
    epoch_loss: float = 0.0
    epoch_patches: int = 0

    def count_step(self, loss, patches):
        self.step += 1
        self.epoch_batches += 1
        self.epoch_loss += loss * patches
        self.epoch_patches += patches

    def end_epoch(self, train_loss, valid_loss, valid_sdr, lr, seconds, speed, best_by="loss"):
        """Count the epoch (history row, bests so far); True if it is the best yet by `best_by`.

        valid_sdr is NaN for an epoch not scored (--sdr-every) or whose songs all have silent
        vocals: it is then never the best, and history.csv says nan."""
        self.epoch += 1
        better_loss, better_sdr = valid_loss < self.best_valid_loss, valid_sdr > self.best_valid_sdr
        if better_loss:
            self.best_valid_loss, self.best_epoch = valid_loss, self.epoch
        if better_sdr:
            self.best_valid_sdr, self.best_sdr_epoch = valid_sdr, self.epoch
        self.history.append({"epoch": self.epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                             "constant_mask_loss": self.constant_mask_loss, "valid_sdr": valid_sdr,
                             "mixture_sdr": self.reference_sdr["mixture"], "oracle_sdr": self.reference_sdr["oracle"],
                             "lr": lr, "seconds": round(seconds, 2), "patches_per_s": round(speed, 2)})
        self.epoch_batches, self.epoch_loss, self.epoch_patches = 0, 0.0, 0
        return better_sdr if best_by == "sdr" else better_loss

    def best_model_epoch(self, best_by):
        """The epoch saved as best_model.pth."""
        return self.best_sdr_epoch if best_by == "sdr" else self.best_epoch


def checkpoint_of(model, optimizer, scheduler, run, model_config, signal_config, run_config):
    """Everything --resume needs: the model (weights, both configs; checkpoints.build_checkpoint),
    the optimizer, the scheduler, the random state, the run's flags and its RunState, field by field."""
    return build_checkpoint(model, model_config, signal_config, optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(), rng=torch.get_rng_state(), args=run_config,
                            **asdict(run))


# --- The run: data, model, epochs ---

def prepare_data(args, signal_config, dist):
    """(train_loader, valid_loader, valid_set, a fixed validation patch for the figure, sampler)."""
    quiet = args.quiet or not dist.is_main
    with dist.main_first():  # rank 0 builds the toy set and the feature cache, the others then read them
        split, train_features, valid_features = training_features(args.root, args.n_songs, signal_config,
                                                                   args.cache_dir, quiet, args.decode_jobs)
    train_set = PatchDataset(train_features, signal_config.patch_frames, args.samples_per_track, args.augment,
                             args.augment_eq)
    valid_set = PatchDataset(valid_features, signal_config.patch_frames)
    sampler = dist.sampler(train_set, args.seed)
    pin = torch.cuda.is_available() and not args.cpu
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler,
                              num_workers=args.num_workers, pin_memory=pin, persistent_workers=args.num_workers > 0)
    valid_loader = DataLoader(valid_set, batch_size=args.batch_size, num_workers=0, pin_memory=pin)
    per_process = f", {len(train_set) // dist.world} per process" if dist.world > 1 else ""
    dist.print("\n".join(split.notes + [
        f"Data: {split.source}, {len(split.train)} training songs ({len(train_set)} random patches per epoch"
        f"{per_process}), {len(split.valid)} validation songs (tiled by {len(valid_set)} patches)"]))
    return train_loader, valid_loader, valid_set, crop(valid_features[0], 0, signal_config.patch_frames), sampler


def build_scheduler(optimizer, args, steps_per_epoch):
    """The learning-rate schedule: per epoch on the validation loss (plateau), or per step (cosine).

    Cosine warms up linearly over the first epoch (Adam's first steps on a fresh BatchNorm network are the
    unsteady ones), then follows half a cosine from --lr to --lr / 100 at the last step, so that the last
    epochs make small, steady changes."""
    if args.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    warmup, total = steps_per_epoch, args.epochs * steps_per_epoch

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train(args):
    """Run (or resume) training as the flags say; returns the history rows."""
    dist = Distributed(args.cpu)  # dist.print: rank 0 alone prints
    stop = StopRequests()  # from here on Ctrl-C or SIGTERM only asks to stop, at the next step
    finished = False
    try:
        history = train_epochs(args, dist, stop)
        finished = True
    finally:
        stop.release()
        dist.close(finished)
    return history


def train_epochs(args, dist, stop):
    """The run, from the flags to the last epoch (its loop is one epoch); returns the history rows."""
    started = time.time()
    resumed = load_checkpoint(args.resume, flag="--resume") if args.resume else None
    try:
        model_config = UNetConfig(channels=tuple(args.channels), kernel_size=args.kernel_size,
                                  batch_norm=args.batch_norm, decoder_activation=args.decoder_activation,
                                  dropout=args.dropout, input_compression=args.input_compression)
    except ValueError as err:
        raise TrainingError(f"bad model flags: {err}") from err
    if resumed and UNetConfig(**resumed["model_config"]) != model_config:
        raise TrainingError(f"{args.resume} holds a model with {UNetConfig(**resumed['model_config'])}; "
                            "drop the model flags to resume it")
    signal_config = SignalConfig(**resumed["signal"]) if resumed else SignalConfig()
    # Each process draws its own random patches; a resumed run draws new ones.
    seed_everything(args.seed + (resumed["epoch"] if resumed else 0) + 1000 * dist.rank)
    device = dist.device(pick_device(args.cpu))
    amp_dtype, loss_fn = pick_precision(args.precision, device), L1Loss()
    if resumed:
        dist.print(f"Resuming from {args.resume} (epoch {resumed['epoch']}, step {resumed['step']})")
    dist.print(describe_device(device, amp_dtype) + (f", {dist.world} processes" if dist.world > 1 else ""))
    train_loader, valid_loader, valid_set, example, sampler = prepare_data(args, signal_config, dist)
    if dist.is_main:  # only now: a failed --resume or a wrong --root leaves no empty save folder
        prepare_save_dir(args.save_dir)

    # The model, its optimizer and schedule, and the run's bookkeeping: new, or as the checkpoint left them.
    steps_per_epoch = min(len(train_loader), args.max_batches or len(train_loader))
    model = UNet(model_config).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = build_scheduler(optimizer, args, steps_per_epoch)
    run = RunState(run_dir=os.path.join(args.save_dir, "logs", datetime.now().strftime("%Y%m%d_%H%M%S")))
    if resumed:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        run = RunState(**{key: resumed[key] for key in asdict(run) if key in resumed})
        if dist.world == 1:
            torch.set_rng_state(resumed["rng"])
    run.run_dir = dist.share(run.run_dir)  # one TensorBoard folder: rank 0's name
    dist.print(f"Model: {count_parameters(model):,} parameters, {model_config}")
    replica = dist.wrap(model, device)  # the model itself, or under torchrun its DistributedDataParallel wrapper
    if run.epoch >= args.epochs:
        dist.print(f"This run already has {run.epoch} epochs; pass a larger --epochs to train further.")
        return run.history
    if run.constant_mask_loss is None:
        run.constant_mask_loss, c = best_constant_mask_loss(valid_set)
        dist.print(f"Validation loss of the best constant mask (c = {c:.3f}): {run.constant_mask_loss:.5f}")
    if run.reference_sdr is None:  # the SDR chart's floor and ceiling
        run.reference_sdr = reference_sdr(valid_set.features, signal_config)
        dist.print(reference_line(run.reference_sdr))
    if args.best_by == "sdr" and math.isnan(run.reference_sdr["mixture"]):
        raise TrainingError("every validation song's vocals are silent, so no SDR can pick the best model: "
                            "use --best-by loss")
    run_config = vars(args)
    log = open_run_log(run, run_config, model_config, signal_config, resumed) if dist.is_main else None
    progress, per_step = dist.is_main and not args.quiet, args.lr_schedule == "cosine"

    try:
        with log or nullcontext():
            while run.epoch < args.epochs:  # one epoch of the run
                epoch, start = run.epoch + 1, time.time()
                if sampler is not None:
                    sampler.set_epoch(epoch - 1)
                # Train (only the batches an interrupted epoch still lacks), then validate.
                speed = train_one_epoch(replica, train_loader, optimizer, loss_fn, device, run,
                                        batches=max(0, steps_per_epoch - run.epoch_batches), amp_dtype=amp_dtype,
                                        step_scheduler=scheduler if per_step else None, log=log, stop=stop,
                                        progress=progress)
                valid_loss = validate(model, valid_loader, loss_fn, device, progress=progress)
                # What a student reports: the vocals SDR of the whole validation songs (median), every
                # --sdr-every epochs and after the last (separation.model_sdr: cheap, at 8192 Hz).
                scored = epoch % args.sdr_every == 0 or epoch == args.epochs
                valid_sdr = model_sdr(model, valid_set.features, signal_config) if scored else math.nan
                stop.check()
                # Count the epoch: every process agrees on the figures and steps its scheduler alike.
                train_loss, valid_loss, speed = dist.agree(run.epoch_loss / run.epoch_patches, valid_loss, speed)
                if not per_step:
                    scheduler.step(valid_loss)
                improved = run.end_epoch(train_loss, valid_loss, valid_sdr, optimizer.param_groups[0]["lr"],
                                         time.time() - start, speed, args.best_by)
                if not dist.is_main:
                    continue
                # Save, then report: history.csv, loss_curve.png, TensorBoard, the console line.
                checkpoint = checkpoint_of(model, optimizer, scheduler, run, model_config, signal_config, run_config)
                save_epoch(args.save_dir, checkpoint, epoch, args.epochs, improved, args.checkpoint_every)
                loss_curve = write_history(args.save_dir, run.history, run.best_model_epoch(args.best_by))
                with_figures = epoch == 1 or epoch % args.figure_every == 0 or epoch == args.epochs
                log_epoch(log, run.history[-1], loss_curve, with_figures)
                if with_figures:
                    log_example(log, model, example, signal_config, device, epoch)
                print(epoch_line(run, args.epochs, args.best_by))
    except KeyboardInterrupt:
        # Saved as it stands, mid-epoch too: run.step, the weights, the optimizer and the scheduler
        # all stop at the same step, and --resume runs only the rest of the epoch.
        if dist.is_main:
            last = os.path.join(args.save_dir, "last_model.pth")
            save_checkpoint(last, checkpoint_of(model, optimizer, scheduler, run, model_config, signal_config,
                                                run_config))
            print(f"\nInterrupted: saved {last} after {run.epoch} epoch{'' if run.epoch == 1 else 's'} and "
                  f"{run.step} steps; continue with: {runnable()} {pasteable(__file__)} --resume --save-dir "
                  f"{shlex.quote(args.save_dir)}")
        sys.exit(130)
    dist.print(run_summary(run, args.save_dir, time.time() - started, args.best_by))
    return run.history


def main(argv=None):
    try:
        train(get_args(argv))
    except UserError as err:
        sys.exit(f"error: {err}")
    except OSError as err:  # a save folder that cannot be created or written
        sys.exit(f"error: {cannot_write(err, 'the save folder', 'pick another --save-dir or --cache-dir')}")


if __name__ == "__main__":
    main()
