"""A moving average of the weights, with BatchNorm statistics measured for it.

train.py's --average-weights keeps, beside the weights that train, their
exponential moving average over the optimizer steps (`update`, after each
step): the average of nearby points of the trajectory often sits lower in the
loss than any one of them, at no cost at inference.

BatchNorm is the trap. Its running statistics are not weights: they are
averages of the activations of the weights that computed them, and the
averaged weights compute other activations. Averaging them with the weights
gave a model that validated far worse than the trained one (docs/training.md,
"Weight averaging"). So the statistics of the average are measured for it,
before each validation, on a fixed set of training patches (`refreshed`),
the way torch.optim.swa_utils.update_bn does, with no random draw: the
training itself runs exactly as without the average.
"""

import copy

import numpy as np
import torch
import torch.nn as nn

BATCH_NORM_PATCHES = 64  # training patches that measure the average's BatchNorm statistics, at most


class WeightAverage:
    """The exponential moving average of a model's weights, debiased like Adam's moments.

    After n updates with weights w_1..w_n the average is
    sum_k decay^(n-k) (1 - decay) w_k / (1 - decay^n): the first update gives
    w_1 itself, and no early weights linger, however short the run.
    """

    def __init__(self, model, decay, patches, batch_size=16):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.updates = decay, 0
        self.patches, self.batch_size = patches, batch_size  # (N, F, P) mix magnitudes for refreshed()

    @torch.no_grad()
    def update(self, model):
        """Move the average towards `model`'s current weights (after each optimizer step)."""
        self.updates += 1
        weight = (1 - self.decay) / (1 - self.decay ** self.updates)
        averaged = list(self.model.parameters())
        torch._foreach_lerp_(averaged, [p.detach() for p in model.parameters()], weight)

    @torch.no_grad()
    def refreshed(self, device):
        """The averaged model in eval mode, its BatchNorm statistics measured for its own weights."""
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a plain mean over the batches below
            norm.train()
        for batch in self.patches.split(self.batch_size):
            self.model(batch.to(device))  # (B, F, P): only the statistics change
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
            norm.eval()
        return self.model

    def validation_loss(self, validate, loader, loss_fn, device):
        """validate(model, loader, loss_fn, device) of the refreshed average, drawing nothing from the run's
        random numbers (a DataLoader's iterator draws its seed from them): the run trains as without it."""
        with torch.random.fork_rng(devices=[]):
            return validate(self.refreshed(device), loader, loss_fn, device)

    def state_dict(self):
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]


def tiling_patches(dataset, most=BATCH_NORM_PATCHES):
    """Mix magnitudes (N, F, P) of up to `most` patches of a fixed tiling (data.PatchDataset with
    samples_per_track=0), evenly spread over it: every song has its say, and no random draw is taken."""
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(len(dataset), most)).round().astype(int))
    return torch.stack([dataset[int(i)][0] for i in picks])
