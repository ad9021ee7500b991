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

Every checkpoint holds the model config and signal settings, so inference.py
needs no flags to rebuild the model.
"""

import argparse
import csv
import glob
import json
import math
import os
import signal as signals
import sys
import time
from datetime import datetime

import numpy as np
import torch
import torch.nn as nn

from audio import SignalConfig, atomic_path, istft
from data import (DEFAULT_CACHE_DIR, DataError, HelpFormatter, PatchDataset, bounded_number, crop,
                  load_features, positive_int_or_all, split_data, typed_flags)
from unet_model import (CHECKPOINT_FORMAT, CheckpointError, UNet, UNetConfig, count_parameters,
                        load_checkpoint, pick_device)


class L1Loss(nn.Module):
    """The lab's loss L = || mask * X - Y ||_1, averaged over every element.

    X is the mix magnitude, Y the true vocals magnitude; the mean (not the
    sum) keeps the value independent of batch and patch size.
    """

    def forward(self, mask, mix, vocals):
        return torch.mean(torch.abs(mask * mix - vocals))


class TrainingError(Exception):
    """A user-facing problem that stops training; the message is one sentence."""


# --------------------------------------------------------------------------
# Flags
# --------------------------------------------------------------------------

def build_parser():
    p = argparse.ArgumentParser(
        description="Train the singing-voice U-Net (masked L1 loss) on MUSDB18 or the toy set.",
        formatter_class=HelpFormatter)
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=bounded_number(int, 1, 100_000), default=20, help="total number of epochs")
    g.add_argument("--batch-size", type=bounded_number(int, 1, 4096), default=16, help="patches per batch")
    g.add_argument("--lr", type=bounded_number(float, 0.0, 1.0, low_open=True), default=1e-3, help="Adam learning rate")
    g.add_argument("--samples-per-track", type=bounded_number(int, 1, 100_000), default=48,
                   help="random patches drawn from each training song per epoch")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random gain per source (0.25-1.25) and, half the time, the vocals over another "
                        "song's accompaniment; measured to lower the validation loss (see README)")
    g.add_argument("--seed", type=bounded_number(int, 0, 2**32 - 1), default=42, help="seed for python, numpy and torch")
    g.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is available")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16 autocast for the training steps (validation stays fp32); auto: bf16 "
                        "where the hardware computes it natively (recent x86 CPUs, Ampere+ GPUs)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="channels_last memory layout for the convolutions (faster on CPU and GPU)")
    g.add_argument("--num-workers", type=bounded_number(int, 0, 256), default=0,
                   help="DataLoader worker processes (patches come from a memory-mapped cache, "
                        "so 0 is usually fastest on a laptop)")
    g.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                   help="continue a run: a checkpoint path, or no value for the newest in --save-dir")
    g.add_argument("--max-batches", type=bounded_number(int, 1, 10**9), default=None,
                   help="stop each epoch after this many batches (quick checks)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")

    g = p.add_argument_group("data")
    g.add_argument("--root", default=None,
                   help="MUSDB18 or MUSDB18-HQ folder; if not given: $MUSDB_PATH, else the generated toy set")
    g.add_argument("--n-songs", type=positive_int_or_all, default=10,
                   help="training songs to use, or 'all' (left at its default: all if there are fewer)")
    g.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="cache of decoded spectrograms")

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
    return p


def get_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    # Which flags were typed: a resumed run keeps its stored values for the others.
    args.explicit = typed_flags(parser, argv)
    return args


def model_config_from(args):
    try:
        return UNetConfig(channels=tuple(args.channels), kernel_size=args.kernel_size,
                          batch_norm=args.batch_norm, decoder_activation=args.decoder_activation,
                          dropout=args.dropout)
    except ValueError as err:
        raise TrainingError(f"bad model flags: {err}") from err


def pick_precision(choice, device):
    """torch.bfloat16 for autocast, or None for plain fp32.

    bf16 autocast is about 1.5x faster on CPUs with AVX512-BF16 or AMX, but
    emulated (slower than fp32) on older ones, so `auto` only picks it where
    the hardware has it.
    """
    if choice == "fp32" or device.type == "mps":
        return None
    if choice == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    native = [getattr(torch.cpu, name, lambda: False)() for name in
              ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return torch.bfloat16 if any(native) else None


def seed_everything(seed):
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------

def save_checkpoint(path, state):
    """torch.save to a temporary file in the same folder, then rename: the
    checkpoint under `path` is always either the old one or the new one."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())


def find_latest_checkpoint(save_dir):
    """The readable checkpoint of the highest epoch in save_dir, or None."""
    best, best_epoch = None, -1
    for path in glob.glob(os.path.join(save_dir, "*.pth")):
        try:
            epoch = load_checkpoint(path)["epoch"]
        except CheckpointError:
            print(f"Skipping unreadable checkpoint {path}")
            continue
        # On a tie prefer last_model.pth, which may hold an interrupted epoch's weights.
        if epoch > best_epoch or (epoch == best_epoch and path.endswith("last_model.pth")):
            best, best_epoch = path, epoch
    return best


# --------------------------------------------------------------------------
# One epoch, evaluation, baseline
# --------------------------------------------------------------------------

def train_one_epoch(model, loader, optimizer, loss_fn, device, writer, state, args):
    """One pass over the training patches; returns (mean loss, patches/s)."""
    from tqdm import tqdm

    model.train()
    total, count, start = 0.0, 0, time.time()
    bar = tqdm(loader, desc=f"epoch {state['epoch'] + 1}/{args.epochs}", leave=False,
               disable=args.quiet or writer is None, unit="batch")
    for i, (mix, vocals) in enumerate(bar):
        if args.max_batches and i >= args.max_batches:
            break
        mix = mix.to(device, non_blocking=True)  # (B, F, T)
        vocals = vocals.to(device, non_blocking=True)  # (B, F, T)
        with torch.autocast(device.type, dtype=args.amp_dtype or torch.float32,
                            enabled=args.amp_dtype is not None):
            mask = model(mix)  # (B, F, T)
        loss = loss_fn(mask.float(), mix, vocals)  # the loss itself in fp32
        value = loss.item()  # one host sync per step
        if not math.isfinite(value):
            raise TrainingError(
                f"the loss became {value} at epoch {state['epoch'] + 1}, step {state['step'] + 1}; "
                f"the checkpoints already in {args.save_dir} are intact: try a lower --lr"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        state["step"] += 1
        total += value * len(mix)
        count += len(mix)
        if writer is not None:  # rank 0 only
            writer.add_scalar("loss/train_step", value, state["step"])
        bar.set_postfix(loss=f"{total / count:.5f}")
    return total / max(count, 1), count / (time.time() - start)


@torch.inference_mode()
def evaluate(model, loader, loss_fn, device, quiet=True):
    """Mean validation loss over the fixed validation tiling."""
    from tqdm import tqdm

    model.eval()
    total, count = 0.0, 0
    for mix, vocals in tqdm(loader, desc="validation", leave=False, disable=quiet, unit="batch"):
        mix, vocals = mix.to(device), vocals.to(device)
        total += loss_fn(model(mix), mix, vocals).item() * len(mix)
        count += len(mix)
    return total / count


def best_constant_mask_loss(dataset):
    """Validation loss of the best mask that ignores its input: one constant c.

    mean|c*X - Y| is minimised by the weighted median of Y/X with weights X,
    so this is the bar a useful model has to get clearly below.
    """
    mixes, vocals = zip(*(dataset[i] for i in range(len(dataset))))
    x, y = torch.stack(mixes).flatten().double(), torch.stack(vocals).flatten().double()
    keep = x > 0
    ratios, weights = y[keep] / x[keep], x[keep]
    order = torch.argsort(ratios)
    cumulative = torch.cumsum(weights[order], 0)
    c = ratios[order][torch.searchsorted(cumulative, cumulative[-1] / 2)].clamp(0, 1)
    return torch.mean(torch.abs(c * x - y)).item(), c.item()


# --------------------------------------------------------------------------
# TensorBoard figure and report files
# --------------------------------------------------------------------------

def log_example(writer, model, patch, signal, device, epoch):
    """Figure of mix / predicted mask / estimated vocals / true vocals for one
    fixed validation patch, plus the estimated vocals as audio (mix phase)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vocals_c, accomp_c = (torch.from_numpy(np.array(p)) for p in patch)  # complex (F, T) each
    mix_c = vocals_c + accomp_c
    model.eval()
    with torch.inference_mode():
        mask = model(mix_c.abs()[None].to(device))[0].cpu()  # (F, T)
    estimate = mask * mix_c.abs()
    seconds = patch.shape[-1] * signal.hop_length / signal.sample_rate
    fig, axes = plt.subplots(1, 4, figsize=(18, 4), sharey=True)
    panels = [("mix", mix_c.abs()), ("predicted mask", mask), ("estimated vocals", estimate),
              ("true vocals", vocals_c.abs())]
    for ax, (title, image) in zip(axes, panels):
        if title == "predicted mask":
            data, kw = image, {"vmin": 0, "vmax": 1, "cmap": "magma"}
        else:
            data, kw = 20 * torch.log10(image + 1e-5), {"vmin": -80, "vmax": 0, "cmap": "viridis"}
        im = ax.imshow(data.numpy(), origin="lower", aspect="auto",
                       extent=[0, seconds, 0, signal.sample_rate / 2], **kw)
        ax.set_title(title)
        ax.set_xlabel("time (s)")
        fig.colorbar(im, ax=ax, label="mask" if title == "predicted mask" else "dB")
    axes[0].set_ylabel("frequency (Hz)")
    fig.tight_layout()
    writer.add_figure("validation/mix_mask_vocals", fig, epoch)
    audio = istft(mask * mix_c, signal, length=(patch.shape[-1] - 1) * signal.hop_length)
    peak = audio.abs().max().clamp(min=1e-8)
    writer.add_audio("validation/estimated_vocals", (audio / peak)[None], epoch,
                     sample_rate=signal.sample_rate)


def write_history(save_dir, history):
    """history.csv and loss_curve.png, both rewritten after every epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    with atomic_path(os.path.join(save_dir, "history.csv")) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax.plot(epochs, [h["valid_loss"] for h in history], "s-", label="validation")
    ax.axhline(history[0]["constant_mask_loss"], color="gray", linestyle="--",
               label="best constant mask (validation)")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("masked L1 loss")
    ax.set_title("U-Net training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(os.path.join(save_dir, "loss_curve.png")) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def setup_distributed(force_cpu):
    """(rank, local_rank, world_size): from torchrun's environment, else (0, 0, 1).

    Under `torchrun --nproc_per_node N train.py ...` every process trains a
    replica (DistributedDataParallel: gloo on CPU, nccl on GPUs) on its own
    shard of the patches; rank 0 alone prints, logs and writes files.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 0, 1
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() and not force_cpu else "gloo"
    dist.init_process_group(backend)
    return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world


def prepare_data(args, signal, rank, world):
    """(train_loader, valid_loader, valid_set, first validation features, sampler)."""
    import torch.distributed as dist
    from torch.utils.data import DataLoader, DistributedSampler

    quiet = args.quiet or rank > 0
    if rank > 0:
        dist.barrier()  # rank 0 builds the toy set and the feature cache first
    split = split_data(args.root, args.n_songs, quiet=quiet, strict="n_songs" in args.explicit)
    if not split.train:
        raise TrainingError(f"{split.root} has no training songs under train/")
    if not split.valid:
        raise TrainingError(f"{split.root} has a single training song; validation needs at least two")
    train_features = load_features(split.train, signal, args.cache_dir, quiet)
    valid_features = load_features(split.valid, signal, args.cache_dir, quiet)
    if rank == 0 and world > 1:
        dist.barrier()
    train_set = PatchDataset(train_features, signal.patch_frames, args.samples_per_track, args.augment)
    valid_set = PatchDataset(valid_features, signal.patch_frames)
    sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=args.seed) if world > 1 else None
    pin = torch.cuda.is_available() and not args.cpu
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler,
                              num_workers=args.num_workers, pin_memory=pin,
                              persistent_workers=args.num_workers > 0)
    valid_loader = DataLoader(valid_set, batch_size=args.batch_size, num_workers=0, pin_memory=pin)
    if rank == 0:
        for note in split.notes:
            print(note)
        print(f"Data: {split.source}, {len(split.train)} training songs ({len(train_set)} patches per epoch"
              f"{f', {len(train_set) // world} per process' if world > 1 else ''}), "
              f"{len(split.valid)} validation songs ({len(valid_set)} patches)")
    return train_loader, valid_loader, valid_set, valid_features[0], sampler


def train(args):
    """Run (or resume) training as the flags say; returns the history rows."""
    from torch.utils.tensorboard import SummaryWriter

    started = time.time()
    rank, local_rank, world = setup_distributed(args.cpu)
    main_process = rank == 0
    say = print if main_process else (lambda *a, **k: None)
    if main_process:
        os.makedirs(args.save_dir, exist_ok=True)
        for stale in glob.glob(os.path.join(args.save_dir, ".tmp-*")):
            os.unlink(stale)  # left by a run killed while saving

    # Resuming: the stored run's flags stand unless typed again now.
    resumed = None
    if args.resume:
        path = find_latest_checkpoint(args.save_dir) if args.resume == "latest" else args.resume
        if path is None:
            raise TrainingError(f"--resume found no checkpoint in {args.save_dir}; train without --resume first")
        resumed = load_checkpoint(path)
        for key, value in resumed["args"].items():
            if key not in args.explicit and key not in ("resume", "explicit"):
                setattr(args, key, value)
        stored = UNetConfig(**resumed["model_config"])
        if model_config_from(args) != stored:
            raise TrainingError(f"{path} holds a model with {stored}; drop the model flags to resume it")
        say(f"Resuming from {path} (epoch {resumed['epoch']})")

    config = model_config_from(args)
    signal = SignalConfig(**resumed["signal"]) if resumed else SignalConfig()
    # Each process draws its own random patches; a resumed run draws new ones.
    seed_everything(args.seed + (resumed["epoch"] if resumed else 0) + 1000 * rank)
    device = pick_device(args.cpu)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    train_loader, valid_loader, valid_set, example, sampler = prepare_data(args, signal, rank, world)
    example = crop(example, 0, signal.patch_frames)  # fixed validation patch for the figure

    model = UNet(config).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    args.amp_dtype = pick_precision(args.precision, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    loss_fn = L1Loss()
    say(f"Model: {count_parameters(model):,} parameters, {config}; device {device}, "
        f"{'bf16 autocast' if args.amp_dtype else 'fp32'}" + (f", {world} processes" if world > 1 else ""))

    if resumed:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        state = {k: resumed[k] for k in ("epoch", "step", "best_valid_loss", "best_epoch", "history",
                                         "run_dir", "constant_mask_loss")}
        if world == 1:
            torch.set_rng_state(resumed["rng"])
    else:
        run_dir = os.path.join(args.save_dir, "logs", datetime.now().strftime("%Y%m%d_%H%M%S"))
        state = {"epoch": 0, "step": 0, "best_valid_loss": float("inf"), "best_epoch": 0,
                 "history": [], "run_dir": run_dir, "constant_mask_loss": None}
    if world > 1:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        # Every process must write into the same run folder: rank 0's name wins.
        names = [state["run_dir"]]
        dist.broadcast_object_list(names, src=0)
        state["run_dir"] = names[0]
        trained = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
    else:
        trained = model

    if state["epoch"] >= args.epochs:
        say(f"This run already has {state['epoch']} epochs; pass a larger --epochs to train further.")
        return state["history"]

    if state["constant_mask_loss"] is None:
        state["constant_mask_loss"], c = best_constant_mask_loss(valid_set)
        say(f"Validation loss of the best constant mask (c = {c:.3f}): {state['constant_mask_loss']:.5f}")

    run_config = {k: v for k, v in vars(args).items() if k not in ("explicit", "amp_dtype")}
    writer = SummaryWriter(state["run_dir"]) if main_process else None
    if main_process and not resumed:
        with open(os.path.join(state["run_dir"], "config.json"), "w") as f:
            json.dump({"args": run_config, "model": config.to_dict(), "signal": signal.to_dict()}, f, indent=2)
        writer.add_text("config", "```\n" + json.dumps(run_config, indent=2) + "\n```", 0)
        writer.add_scalar("loss/valid_constant_mask", state["constant_mask_loss"], 0)

    def checkpoint():
        return {"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "model_config": config.to_dict(), "signal": signal.to_dict(), "args": run_config,
                "rng": torch.get_rng_state(), "torch_version": str(torch.__version__), **state}

    # SIGTERM (a cluster's time limit, `kill`) stops like Ctrl-C: save, then exit.
    signals.signal(signals.SIGTERM, signals.default_int_handler)
    try:
        while state["epoch"] < args.epochs:
            start = time.time()
            if sampler is not None:
                sampler.set_epoch(state["epoch"])
            train_loss, speed = train_one_epoch(trained, train_loader, optimizer, loss_fn, device,
                                                writer, state, args)
            valid_loss = evaluate(model, valid_loader, loss_fn, device, args.quiet or not main_process)
            if world > 1:
                # Rank 0's figures rule, so that every process steps its scheduler alike.
                shared = torch.tensor([train_loss * world, valid_loss, speed * world], dtype=torch.float64)
                dist.all_reduce(shared[:1])
                dist.broadcast(shared[1:], src=0)
                train_loss, valid_loss, speed = (shared / torch.tensor([world, 1.0, 1.0])).tolist()
            scheduler.step(valid_loss)
            state["epoch"] += 1
            epoch, lr = state["epoch"], optimizer.param_groups[0]["lr"]
            improved = valid_loss < state["best_valid_loss"]
            if improved:
                state["best_valid_loss"], state["best_epoch"] = valid_loss, epoch
            seconds = time.time() - start
            state["history"].append({"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                                     "constant_mask_loss": state["constant_mask_loss"], "lr": lr,
                                     "seconds": round(seconds, 2), "patches_per_s": round(speed, 2)})
            if not main_process:
                continue

            writer.add_scalar("loss/train", train_loss, epoch)
            writer.add_scalar("loss/valid", valid_loss, epoch)
            writer.add_scalar("lr", lr, epoch)
            writer.add_scalar("throughput/patches_per_s", speed, epoch)
            if epoch == 1 or epoch % args.figure_every == 0 or epoch == args.epochs:
                log_example(writer, model, example, signal, device, epoch)
            writer.flush()

            # Best first, then the periodic one, then last: whichever a kill
            # interrupts, the files already written stay whole.
            ckpt = checkpoint()
            if improved:
                save_checkpoint(os.path.join(args.save_dir, "best_model.pth"), ckpt)
            if epoch % args.checkpoint_every == 0:
                save_checkpoint(os.path.join(args.save_dir, f"checkpoint_epoch_{epoch}.pth"), ckpt)
            if epoch == args.epochs:
                save_checkpoint(os.path.join(args.save_dir, "final_model.pth"), ckpt)
            save_checkpoint(os.path.join(args.save_dir, "last_model.pth"), ckpt)
            write_history(args.save_dir, state["history"])
            print(f"epoch {epoch:3d}/{args.epochs}  train {train_loss:.5f}  valid {valid_loss:.5f}  "
                  f"best {state['best_valid_loss']:.5f} (epoch {state['best_epoch']})  "
                  f"{seconds:5.1f} s  {speed:5.1f} patches/s")
    except KeyboardInterrupt:
        # The epoch in progress is not counted: --resume runs it again from these weights.
        if main_process:
            save_checkpoint(os.path.join(args.save_dir, "last_model.pth"), checkpoint())
            writer.close()
            print(f"\nInterrupted: saved {os.path.join(args.save_dir, 'last_model.pth')} after "
                  f"{state['epoch']} epoch{'' if state['epoch'] == 1 else 's'}; continue with: python train.py --resume --save-dir {args.save_dir}")
        sys.exit(130)

    if main_process:
        writer.add_hparams({k: str(v) if isinstance(v, (list, tuple)) or v is None else v
                            for k, v in run_config.items()},
                           {"hparam/best_valid_loss": state["best_valid_loss"]}, run_name=".")
        writer.close()
    ratio = state["best_valid_loss"] / state["constant_mask_loss"]
    minutes = (time.time() - started) / 60
    say(f"Done in {minutes:.1f} min: best validation loss {state['best_valid_loss']:.5f} at epoch "
        f"{state['best_epoch']} ({ratio:.2f} x the constant-mask baseline).")
    if ratio > 0.95:
        say("That is no better than a constant mask: the model has not learned; see Troubleshooting in README.md.")
    say(f"Checkpoints in {os.path.join(args.save_dir, '')}, loss curve in "
        f"{os.path.join(args.save_dir, 'loss_curve.png')}; TensorBoard: tensorboard --logdir "
        f"{os.path.join(args.save_dir, 'logs')}")
    if world > 1:
        dist.barrier()  # let rank 0 finish writing before the process group goes away
        dist.destroy_process_group()
    return state["history"]


def main(argv=None):
    args = get_args(argv)
    try:
        train(args)
    except (TrainingError, DataError, CheckpointError) as err:
        sys.exit(f"error: {err}")
    except OSError as err:  # a save folder that cannot be created or written
        sys.exit(f"error: cannot write {err.filename or args.save_dir} ({err.strerror}): "
                 "pick another --save-dir or --cache-dir")


if __name__ == "__main__":
    main()
