"""The model a run keeps: the moving average of its weights, with BatchNorm statistics measured for it.

Adam at a learning rate of 1e-3 never settles: from one step to the next the
weights move around a good region rather than into it. Their exponential
moving average over the last hundred steps or so sits nearer its middle, and
separated songs the run never saw better than the weights themselves, on
every seed measured (docs/training.md, "The moving average of the weights").
It costs nothing at inference: the average is an ordinary U-Net.

train.py calls `update` after every optimizer step and `kept` when it needs
the model it validates and saves; the weights that train are never touched,
so the run trains step for step as it would without the average. With
decay 0 (`--average-weights 0`) there is no average: `kept` is the trained
U-Net itself, the lab's recipe.

BatchNorm is the trap. Its running statistics are not weights but averages
of the activations of the weights that computed them; averaged along with
the weights, they describe no model, and the average validated far worse
than the weights (docs/training.md). So `kept` measures the average's own
statistics first, as torch.optim.swa_utils.update_bn does, on a fixed tiling
of the training songs, drawing no random number.
"""

import copy

import numpy as np
import torch
import torch.nn as nn

DEFAULT_DECAY = 0.99  # per step: about the last 100 steps (docs/training.md measured 0.99 and 0.998)
BATCH_NORM_PATCHES = 64  # training patches that measure the average's BatchNorm statistics, at most


class WeightAverage:
    """The exponential moving average of a U-Net's weights, debiased like Adam's moments.

    After n updates with weights w_1..w_n the average is
    sum_k decay^(n-k) (1 - decay) w_k / (1 - decay^n): the first update gives
    w_1 itself, and the weights the run started from never linger.
    """

    def __init__(self, unet, decay, patches, batch_size):
        """unet: the model that trains; patches: (N, F, T) training mix magnitudes (`tiling_patches`)
        that measure the average's BatchNorm statistics, batch_size at a time."""
        self.unet, self.decay, self.updates = unet, decay, 0
        self.average = copy.deepcopy(unet).eval().requires_grad_(False) if decay > 0 else None
        self.patches, self.batch_size = patches, batch_size
        self._measured_at = None  # the update count at which the statistics were last measured

    @torch.no_grad()
    def update(self, unet):
        """Move the average towards `unet`'s weights, after each optimizer step."""
        self.updates += 1
        if self.average is not None:
            weight = (1 - self.decay) / (1 - self.decay ** self.updates)
            for averaged, trained in zip(self.average.parameters(), unet.parameters()):
                averaged.lerp_(trained.detach(), weight)

    def kept(self, device):
        """The model the run validates and saves: the average, in eval mode, its BatchNorm statistics
        measured for its weights of now (once per update count); without an average, the U-Net itself."""
        if self.average is None:
            return self.unet
        if self._measured_at != self.updates:
            measure_batch_norm(self.average, self.patches, self.batch_size, device)
            self._measured_at = self.updates
        return self.average

    def resume_fields(self):
        """What a checkpoint holds beside `model` (the model kept) so that --resume goes on: with an average,
        the weights as trained (`trained_model`), the update count and the decay."""
        if self.average is None:
            return {}
        return {"trained_model": self.unet.state_dict(), "average_updates": self.updates, "average_decay": self.decay}

    def resume(self, checkpoint):
        """Load a checkpoint (`model` and resume_fields) into the U-Net (the weights as trained) and the
        average; one without an average (an older run, or decay 0) starts the average from the weights."""
        self.unet.load_state_dict(checkpoint.get("trained_model", checkpoint["model"]))
        if self.average is None:
            return
        if checkpoint.get("average_decay") == self.decay:
            self.average.load_state_dict(checkpoint["model"])
            self.updates = checkpoint["average_updates"]
        else:  # another decay, or none: the average begins again here
            self.average.load_state_dict(self.unet.state_dict())
            self.updates = 0
        self._measured_at = None


@torch.no_grad()
def measure_batch_norm(model, patches, batch_size, device):
    """Set every BatchNorm's running statistics of `model` to the plain mean over `patches` (N, F, T),
    batch_size at a time; the rest of the model stays in eval mode (no dropout: no random draw)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative mean over the batches below
        norm.train()
    for batch in patches.split(batch_size):
        model(batch.to(device))  # (B, F, T): only the statistics change
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
        norm.eval()


def tiling_patches(dataset, most=BATCH_NORM_PATCHES):
    """Mix magnitudes (N, F, T) of up to `most` patches of a fixed tiling (data.PatchDataset with
    samples_per_track=0), evenly spread over it: every song has its say, and no random draw is taken."""
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(len(dataset), most)).round().astype(int))
    return torch.stack([dataset[int(i)][0] for i in picks])
