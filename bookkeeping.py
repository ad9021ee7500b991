"""What a training run counts: epochs, steps, the epoch's loss, the best epochs, the history.

train.py's loop calls `run.count_step(loss, patches)` after every optimizer
step and `run.end_epoch(...)` after every epoch; every checkpoint saves the
RunState field by field (`to_dict`), and --resume rebuilds it from them.

Each step is counted as soon as it is taken, so an interrupt between two
steps leaves the count matching the weights, the optimizer and the
scheduler. Its loss value is read back from the device in groups: reading a
GPU tensor (`.item()`) makes the host wait for the GPU to finish, which at
every step would leave the GPU idle while the next batch is prepared. On the
CPU reading costs nothing, so there it happens at every step.
"""

import math
import os
from dataclasses import dataclass, field, fields

from cli import UserError

READ_EVERY = {"cpu": 1}  # steps between two reads of the losses, per device type (others: DEFAULT_READ_EVERY)
DEFAULT_READ_EVERY = 16


class TrainingError(UserError):
    """A problem that stops training."""


@dataclass
class RunState:
    """What a run counts, saved field by field in every checkpoint and restored by --resume."""

    run_dir: str  # its TensorBoard folder, logs/YYYYMMDD_HHMMSS below the save folder (kept on --resume)
    epoch: int = 0  # epochs done
    step: int = 0  # optimizer steps done: the x axis of the per-step charts
    best_valid_loss: float = math.inf
    best_epoch: int = 0  # the epoch of best_valid_loss: best_model.pth
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

    def __post_init__(self):
        # Relative to the save folder, so that a renamed folder keeps its log; older runs stored the path as
        # typed then (checkpoints/logs/...), whose last part is the same folder.
        self.run_dir = os.path.join("logs", os.path.basename(os.path.normpath(self.run_dir)))
        self.unread = []  # [(step, loss tensor, patches, learning rate)] not yet read back from the device
        self.read_every, self.log = 1, None

    def to_dict(self):
        """The fields a checkpoint saves (not the losses still on the device: read them first)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def new_data(self):
        """Forget what was measured on the songs of before (songs.py's data changed): the baselines, measured
        again, and the bests, so that best_model.pth is chosen on the songs of now."""
        self.constant_mask_loss, self.reference_sdr = None, None
        self.best_valid_loss, self.best_epoch, self.best_valid_sdr, self.best_sdr_epoch = math.inf, 0, -math.inf, 0

    def watch(self, device, log=None):
        """Read the losses back at the pace `device` affords, and give each one to `log` (reports.RunLog)."""
        self.read_every = READ_EVERY.get(device.type, DEFAULT_READ_EVERY)
        self.log = log

    def count_step(self, loss, patches, lr):
        """Count one optimizer step at once; its loss (a tensor) is read with the next group."""
        self.step += 1
        self.epoch_batches += 1
        self.epoch_patches += patches
        self.unread.append((self.step, loss.detach(), patches, lr))
        if len(self.unread) >= self.read_every:
            self.read_losses()

    def read_losses(self):
        """Add the unread steps' losses to the epoch's sum and the log; a loss that is not finite stops the run."""
        for step, loss, patches, lr in self.unread:
            value = loss.item()  # the first one waits for the device, the others are then ready
            if not math.isfinite(value):
                self.unread = []
                raise TrainingError(f"the loss became {value} at epoch {self.epoch + 1}, step {step}; the "
                                    "checkpoints already written are intact: try a lower --lr")
            self.epoch_loss += value * patches
            if self.log:
                self.log.step(value, lr, step)
        self.unread = []

    @property
    def running_loss(self):
        """The mean loss of the epoch's steps read so far (the progress bar's)."""
        read = self.epoch_patches - sum(patches for _, _, patches, _ in self.unread)
        return self.epoch_loss / read if read else math.nan

    @property
    def mean_epoch_loss(self):
        """The mean training loss of the epoch so far (its steps read back first)."""
        self.read_losses()
        return self.epoch_loss / max(self.epoch_patches, 1)

    def end_epoch(self, train_loss, valid_loss, valid_sdr, lr, seconds, speed, extra=None):
        """Count the epoch (history row, bests so far); True if its validation loss is the best yet.

        valid_sdr is NaN for an epoch not scored (--sdr-every) or whose songs all have silent
        vocals: it is then never the best, and history.csv says nan."""
        self.epoch += 1
        improved = valid_loss < self.best_valid_loss
        if improved:
            self.best_valid_loss, self.best_epoch = valid_loss, self.epoch
        if valid_sdr > self.best_valid_sdr:
            self.best_valid_sdr, self.best_sdr_epoch = valid_sdr, self.epoch
        self.history.append({"epoch": self.epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                             "constant_mask_loss": self.constant_mask_loss, "valid_sdr": valid_sdr,
                             "mixture_sdr": self.reference_sdr["mixture"], "oracle_sdr": self.reference_sdr["oracle"],
                             "lr": lr, "seconds": round(seconds, 2), "patches_per_s": round(speed, 2), **(extra or {})})
        self.epoch_batches, self.epoch_loss, self.epoch_patches = 0, 0.0, 0
        return improved
