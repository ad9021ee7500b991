"""Train the singing-voice U-Net with the lab's masked L1 loss.

    python train.py                                   # default toy data, 20 epochs
    python train.py --epochs 10 --n-songs 5           # the lab's quick run
    python train.py --root ~/MUSDB18 --n-songs all    # real data
    python train.py --resume                          # continue the run in --save-dir
    tensorboard --logdir checkpoints/logs             # watch it converge

Writes, under --save-dir (default checkpoints/):
    best_model.pth            lowest validation loss so far
    final_model.pth           the model after the last epoch
    checkpoint_epoch_5.pth    every 5 epochs (10, 15, ...)
    last_model.pth            the newest state, where --resume starts
    history.csv, loss_curve.png, logs/YYYYMMDD_HHMMSS/ (TensorBoard)

It reads top to bottom: the loss, the flags, setup() (data, model, optimizer:
all the loop needs), then train(), the lab's loop: per epoch the training
steps (patches X -> mask -> mask * X -> L1 loss against Y -> backward ->
step), validation (the loss, then the vocals SDR), save, report. Elsewhere:
the model saved, the moving average of the weights (averaging.py),
what a run counts (bookkeeping.py), the checkpoint files (checkpoints.py),
what the run shows (reports.py), several processes (distributed.py: in one
process its calls do nothing, and `dist.print` prints on rank 0 only).
"""

import cli  # first: says in one line how to install what is missing (cli.require_installed)

import argparse
import contextlib
import itertools
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

import checkpoints
import reports
import runs
from averaging import DEFAULT_DECAY, WeightAverage, tiling_patches
from bookkeeping import RunState, TrainingError
from data import PatchDataset, best_constant_mask_loss, crop, training_features
from device import describe_device, memory_plan, pick_device, pick_precision
from distributed import Distributed
from files import DEFAULT_CACHE_DIR, cannot_write
from metrics import model_sdr, reference_sdr
from spectral import SignalConfig
from unet_model import UNet, UNetConfig, count_parameters


class L1Loss(nn.Module):
    """The lab's loss L = || mask * X - Y ||_1, averaged over every element.

    X is the mix magnitude, Y the true vocals magnitude; the mean (not the
    sum) keeps the value independent of batch and patch size.
    """

    def forward(self, mask, mix_mag, vocals_mag):
        return torch.mean(torch.abs(mask * mix_mag - vocals_mag))


# --- Flags ---

def build_parser():
    p = cli.ArgumentParser(description="Train the singing-voice U-Net (masked L1 loss) on MUSDB18 or the toy set.")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=cli.bounded_number(int, 1, 100_000), default=20, help="total number of epochs")
    g.add_argument("--batch-size", type=cli.bounded_number(int, 1, 4096), default=16, help="patches per batch")
    g.add_argument("--lr", type=cli.bounded_number(float, 0.0, 1.0, low_open=True), default=1e-3,
                   help="Adam learning rate, halved on the 4th epoch in a row without a better validation loss")
    g.add_argument("--samples-per-track", type=cli.bounded_number(int, 1, 100_000), default=48,
                   help="random patches drawn from each training song per epoch")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True, help="random gain per "
                   "source (0.25-1.25) and, half the time, the vocals over another song's accompaniment")
    g.add_argument("--average-weights", type=cli.bounded_number(float, 0.0, 0.9999), default=DEFAULT_DECAY,
                   metavar="DECAY", help="validate and save the moving average of the weights, DECAY per step "
                   "(averaging.py); 0: the weights as trained, the lab's recipe")
    g.add_argument("--seed", type=cli.bounded_number(int, 0, 2**32 - 1), default=42,
                   help="seed for python, numpy and torch")
    g.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is available")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16 autocast for the training steps (validation stays fp32); auto: what was measured "
                        "faster and no worse on this kind of machine (docs/training.md)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory layout for the convolutions (default: on, faster on CPUs and CUDA "
                        "GPUs; off on an Apple GPU, where torch 2.11 trains slower with it)")
    g.add_argument("--num-workers", type=cli.bounded_number(int, 0, 256), default=0, help="DataLoader worker "
                   "processes (patches come from a memory-mapped cache: 0 is usually fastest on a laptop)")
    g.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                   help="continue the run of --save-dir (with the flags typed now replacing its own), or the run "
                        "of a checkpoint path, in its folder unless --save-dir is given")
    g.add_argument("--max-batches", type=cli.positive_int_or_all, default=None,
                   help="stop each epoch after this many batches (quick checks); all: no limit (the default)")
    g.add_argument("--sdr-every", type=cli.bounded_number(int, 1, 100_000), default=1,
                   help="score the validation songs' vocals SDR every this many epochs (and after the last)")
    g.add_argument("--quiet", action="store_true", help="no progress bars; the epoch lines stay")

    g = p.add_argument_group("data")
    cli.add_root_flag(g)
    cli.add_training_songs_flag(g)
    g.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="cache of decoded spectrograms")
    g.add_argument("--decode-jobs", type=cli.bounded_number(int, 1, 256), default=min(os.cpu_count() or 1, 4),
                   help="songs decoded at once on the first run (each in a process of its own)")

    g = p.add_argument_group("output")
    g.add_argument("--save-dir", default="checkpoints", help="checkpoints, history and TensorBoard logs")
    g.add_argument("--checkpoint-every", type=cli.bounded_number(int, 1, 100_000), default=5,
                   help="write checkpoint_epoch_N.pth every this many epochs")
    g.add_argument("--figure-every", type=cli.bounded_number(int, 1, 100_000), default=5,
                   help="log the mix/mask/vocals figure and audio to TensorBoard every this many epochs")

    defaults = UNetConfig()
    g = p.add_argument_group("model (stored in the checkpoint; a resumed run keeps its own)")
    g.add_argument("--channels", type=cli.bounded_number(int, 1, 2048), nargs="+", default=list(defaults.channels),
                   help="encoder widths, one per level")
    g.add_argument("--kernel-size", type=cli.bounded_number(int, 1, 31), default=defaults.kernel_size,
                   help="odd kernel size of every convolution")
    g.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=defaults.batch_norm,
                   help="BatchNorm after each convolution (the paper's choice)")
    g.add_argument("--decoder-activation", choices=("leaky_relu", "relu"),
                   default=defaults.decoder_activation, help="lab: leaky_relu, paper: relu")
    g.add_argument("--dropout", type=cli.bounded_number(float, 0.0, 0.99), default=defaults.dropout,
                   help="dropout in the first 3 decoder blocks (paper: 0.5)")
    return p


def get_args(argv=None):
    """The flags. A run that goes on (--resume, or the same command again into its folder: runs.py) starts
    from its own flags, those typed now replacing them; args.resume is then its checkpoint."""
    return runs.parse_flags(build_parser(), argv, checkpoints.load_checkpoint)


# --- Setup: everything the loop needs ---

@dataclass
class Run:
    """What train() works with, made by setup()."""

    unet: nn.Module  # the U-Net whose weights train
    model: nn.Module  # what trains: the U-Net, or under torchrun its DistributedDataParallel wrapper
    average: WeightAverage  # the model kept, validated and saved: the moving average of unet's weights
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    device: torch.device
    amp_dtype: torch.dtype  # torch.bfloat16 for autocast, None for fp32
    train_loader: DataLoader
    valid_loader: DataLoader  # its .dataset: the validation songs' PatchDataset
    sampler: object  # torchrun's DistributedSampler, None in one process
    state: RunState  # what the run counts (bookkeeping.py)
    run_id: str  # the run's identity (runs.py), in every checkpoint
    model_config: UNetConfig
    signal_config: SignalConfig
    steps_per_epoch: int


def setup(args, dist, held):
    """Everything the loop needs, new or as the --resume checkpoint left it; `held` keeps the save
    folder's lock until train() ends."""
    resumed = checkpoints.load_checkpoint(args.resume, flag="--resume") if args.resume else None
    model_config = checkpoints.model_config_of(resumed, args.resume) if resumed else model_config_from_flags(args)
    if resumed and model_config_from_flags(args) != model_config:
        raise TrainingError(f"{args.resume} holds a model with {model_config}; drop the model flags to resume it")
    signal_config = SignalConfig(**resumed["signal"]) if resumed else SignalConfig()
    # Each process draws its own random patches; a resumed run draws new ones.
    seed = args.seed + (resumed["epoch"] if resumed else 0) + 1000 * dist.rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = dist.device(pick_device(args.cpu))
    amp_dtype = pick_precision(args.precision, device)
    if resumed:
        dist.print(runs.resuming_line(args, resumed, build_parser()))
    dist.print(describe_device(device, amp_dtype) + (f", {dist.world} processes" if dist.world > 1 else ""))
    train_loader, valid_loader, sampler, data = prepare_data(args, signal_config, dist, device)
    # Only now (rank 0 alone writes files): a failed --resume or a wrong --root leaves no empty save folder.
    run_id, changed = runs.begin(args.save_dir, held, vars(args), data, resumed) if dist.is_main else (None, None)

    unet = UNet(model_config).to(device)
    if memory_plan(device, args.channels_last).channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(unet.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    state = RunState(run_dir=datetime.now().strftime("%Y%m%d_%H%M%S"))
    tiling = PatchDataset(train_loader.dataset.features, signal_config.patch_frames)  # fixed, for BatchNorm
    average = WeightAverage(unet, args.average_weights, tiling_patches(tiling), args.batch_size)
    if resumed:
        average.resume(resumed)  # the weights as trained, and their average
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        state = RunState(**{key: resumed[key] for key in state.to_dict() if key in resumed})
        if dist.world == 1:
            torch.set_rng_state(resumed["rng"])
    state.run_dir = dist.share(state.run_dir)  # one TensorBoard folder: rank 0's name
    if dist.share(changed):  # other songs than before: what was measured on them means nothing now
        dist.print(changed)
        state.new_data()
    dist.print(f"Model: {count_parameters(unet):,} parameters, {model_config}")
    measure_baselines(state, valid_loader.dataset, signal_config, dist)
    steps = min(len(train_loader), args.max_batches or len(train_loader))
    return Run(unet, dist.wrap(unet, device), average, optimizer, scheduler, device, amp_dtype, train_loader,
               valid_loader, sampler, state, run_id, model_config, signal_config, steps)


def model_config_from_flags(args):
    try:
        return UNetConfig(channels=tuple(args.channels), kernel_size=args.kernel_size, batch_norm=args.batch_norm,
                          decoder_activation=args.decoder_activation, dropout=args.dropout)
    except ValueError as err:
        raise TrainingError(f"bad model flags: {err}") from err


def prepare_data(args, signal_config, dist, device):
    """(train_loader, valid_loader, sampler, the songs' runs.data_identity): the random training patches and
    the validation tiling."""
    quiet = args.quiet or not dist.is_main
    with dist.main_first():  # rank 0 builds the toy set and the feature cache, the others then read them
        split, train_features, valid_features = training_features(args.root, args.n_songs, signal_config,
                                                                   args.cache_dir, quiet, args.decode_jobs, dist.print)
    train_set = PatchDataset(train_features, signal_config.patch_frames, args.samples_per_track, args.augment)
    valid_set = PatchDataset(valid_features, signal_config.patch_frames)
    sampler = dist.sampler(train_set, args.seed)
    pin = memory_plan(device).pinned  # page-locked batches, copied to a CUDA GPU while it computes
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler,
                              num_workers=args.num_workers, pin_memory=pin, persistent_workers=args.num_workers > 0)
    valid_loader = DataLoader(valid_set, batch_size=args.batch_size, num_workers=0, pin_memory=pin)
    dist.print(reports.data_lines(split, len(train_set), len(valid_set), dist.world, args.batch_size))
    return train_loader, valid_loader, sampler, runs.data_identity(split)


def measure_baselines(state, valid_set, signal_config, dist):
    """The bars the model is measured against, once per run (kept by --resume): the loss of the
    best constant mask, and the vocals SDR of the mixture (the floor) and of the oracle mask (the ceiling)."""
    if state.constant_mask_loss is None:
        state.constant_mask_loss, c = best_constant_mask_loss(valid_set)
        dist.print(f"Validation loss of the best constant mask (c = {c:.3f}): {state.constant_mask_loss:.5f}")
    if state.reference_sdr is None:
        state.reference_sdr = reference_sdr(valid_set.features, signal_config)
        dist.print(reports.reference_line(state.reference_sdr))


# --- The lab's loop ---

def train(args):
    """Run (or resume) training as the flags say: per epoch, train, validate, save, report.
    Returns the history rows."""
    dist = Distributed(args.cpu)  # dist.print: rank 0 alone prints
    stop = cli.StopRequests()  # from here on Ctrl-C, SIGTERM or SIGHUP only asks to stop, at the next step
    held = contextlib.ExitStack()  # the save folder's lock (runs.py), until the run ends
    finished, started, run = False, time.time(), None
    try:
        run = setup(args, dist, held)
        state = run.state
        if state.epoch >= args.epochs:
            dist.print(f"The run in {args.save_dir} already has {state.epoch} epochs: nothing to do; --resume "
                       "--epochs N trains it further, another --save-dir starts a new run.")
            finished = True
            return state.history
        loss_fn = L1Loss()
        log = reports.open_run_log(args.save_dir, state, vars(args), run.model_config, run.signal_config, args.resume) \
            if dist.is_main else None
        state.watch(run.device, log)
        with log or contextlib.nullcontext():
            while state.epoch < args.epochs:
                epoch, start, patches_before = state.epoch + 1, time.time(), state.epoch_patches
                # Train: the lab's step on every batch of the epoch (the rest of it, after an interrupt).
                run.model.train()
                for mix_mag, vocals_mag in epoch_batches(run, epoch, dist.is_main and not args.quiet):  # X, Y
                    with torch.autocast(run.device.type, dtype=run.amp_dtype or torch.float32,
                                        enabled=run.amp_dtype is not None):
                        mask = run.model(mix_mag)  # (B, F, T) in [0, 1], from the mix magnitude X (B, F, T)
                    loss = loss_fn(mask.float(), mix_mag, vocals_mag)  # mean |mask * X - Y|, in fp32
                    run.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    run.optimizer.step()
                    run.average.update(run.unet)  # the moving average of the weights (averaging.py)
                    state.count_step(loss, len(mix_mag), run.optimizer.param_groups[0]["lr"])  # counted at once
                    stop.check()  # Ctrl-C or SIGTERM: raises KeyboardInterrupt here, between two steps
                speed = (state.epoch_patches - patches_before) / max(time.time() - start, 1e-9)
                # Validate: the loss on the fixed tiling of the weights as trained (the learning rate follows
                # it), then of the model kept, their moving average, and what a report gives, its vocals SDR
                # on the whole validation songs (median; every --sdr-every epochs and after the last).
                trained_loss = validate(run.unet, run.valid_loader, loss_fn, run.device)
                kept = run.average.kept(run.device)  # run.unet itself with --average-weights 0
                with torch.random.fork_rng(devices=[]):  # draws nothing: the run trains as without the average
                    valid_loss = trained_loss if kept is run.unet else validate(kept, run.valid_loader, loss_fn,
                                                                                run.device)
                valid_sdr = model_sdr(kept, run.valid_loader.dataset.features, run.signal_config) \
                    if epoch % args.sdr_every == 0 or epoch == args.epochs else math.nan
                stop.check()
                # Count the epoch: every process agrees on the figures and steps its scheduler alike.
                train_loss, speed, (valid_loss, trained_loss) = dist.agree(state.mean_epoch_loss, speed,
                                                                           (valid_loss, trained_loss))
                run.scheduler.step(trained_loss)
                improved = state.end_epoch(train_loss, valid_loss, valid_sdr, run.optimizer.param_groups[0]["lr"],
                                           time.time() - start, speed, trained_loss)
                if dist.is_main:
                    checkpoints.save_epoch(args.save_dir, checkpoint_of(run, args), epoch, args.epochs, improved,
                               args.checkpoint_every)
                    report(run, args, epoch, log)
        finished = True
    except KeyboardInterrupt:
        save_interrupted(run, args, dist)
        sys.exit(130)
    finally:
        held.close()
        stop.release()
        dist.close(finished)
    dist.print(reports.run_summary(state, args.save_dir, time.time() - started, args.lr, run.steps_per_epoch))
    return state.history


def epoch_batches(run, epoch, progress):
    """The epoch's batches, (mix magnitude, vocals magnitude) on the device: all of them, or the
    rest of an epoch interrupted by Ctrl-C."""
    if run.sampler is not None:
        run.sampler.set_epoch(epoch - 1)
    batches = max(0, run.steps_per_epoch - run.state.epoch_batches)
    bar = cli.progress_bar(itertools.islice(run.train_loader, batches), not progress, total=batches,
                           desc=f"epoch {epoch}", leave=False, unit="batch")
    copy = {"non_blocking": memory_plan(run.device).pinned}  # only from pinned memory: see device.memory_plan
    for mix_mag, vocals_mag in bar:  # (B, F, T) each
        yield mix_mag.to(run.device, **copy), vocals_mag.to(run.device, **copy)
        bar.set_postfix(loss=f"{run.state.running_loss:.5f}")


@torch.inference_mode()
def validate(unet, loader, loss_fn, device):
    """Mean validation loss over the fixed validation tiling."""
    unet.eval()
    total, count = 0.0, 0
    for mix_mag, vocals_mag in loader:
        mix_mag, vocals_mag = mix_mag.to(device), vocals_mag.to(device)  # (B, F, T) each
        total += loss_fn(unet(mix_mag), mix_mag, vocals_mag).item() * len(mix_mag)
        count += len(mix_mag)
    return total / count


def checkpoint_of(run, args):
    """What every checkpoint holds: the model kept (its weights, model and signal configs; checkpoints.py),
    and what --resume needs: the weights as trained and their average's count (averaging.py), the optimizer,
    the scheduler, the random state, the flags, the RunState's fields."""
    return checkpoints.build_checkpoint(run.average.kept(run.device), run.model_config, run.signal_config,
                                        **run.average.resume_fields(), optimizer=run.optimizer.state_dict(),
                                        scheduler=run.scheduler.state_dict(), rng=torch.get_rng_state(),
                                        args=vars(args), run_id=run.run_id, **run.state.to_dict())


def report(run, args, epoch, log):
    """history.csv, loss_curve.png, TensorBoard, and the console line of an epoch. These only report the run:
    one that cannot be written is a warning line (reports.report_only), and training goes on."""
    loss_curve = reports.write_history(args.save_dir, run.state.history, run.state.best_epoch, log.warned)
    with_figures = epoch == 1 or epoch % args.figure_every == 0 or epoch == args.epochs
    reports.log_epoch(log, run.state.history[-1], loss_curve, with_figures)
    if with_figures:
        example = crop(run.valid_loader.dataset.features[0], 0, run.signal_config.patch_frames)  # a fixed patch
        reports.log_example(log, run.average.kept(run.device), example, run.signal_config, run.device, epoch)
    print(reports.epoch_line(run.state, args.epochs))


def save_interrupted(run, args, dist):
    """Ctrl-C or SIGTERM: last_model.pth as it stands, mid-epoch too (the step, the weights, the optimizer
    and the scheduler all stop at the same step, and --resume runs only the rest of the epoch)."""
    if run is None:
        dist.print("\nInterrupted before training started: nothing was saved.")
        return
    if not dist.is_main:
        return
    run.state.read_losses()
    last = os.path.join(args.save_dir, "last_model.pth")
    checkpoints.save_checkpoint(last, checkpoint_of(run, args))
    print(reports.interrupted_line(last, run.state, __file__, args.save_dir))


def main(argv=None):
    cli.printable_output()
    try:
        train(get_args(argv))
    except cli.UserError as err:
        sys.exit(f"error: {err}")
    except OSError as err:  # a save folder that cannot be created or written
        sys.exit(f"error: {cannot_write(err, 'the save folder', 'pick another --save-dir or --cache-dir')}")


if __name__ == "__main__":
    cli.run_command(main)
