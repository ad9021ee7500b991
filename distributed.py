"""Training on several processes or GPUs (torchrun): all of it in one small object.

    torchrun --standalone --nproc_per_node 4 train.py ...

Under torchrun every process trains a replica of the model
(DistributedDataParallel: gloo on CPUs, nccl on GPUs) on its own shard of the
training patches; rank 0 alone prints, logs and writes files. A plain
`python train.py` gets the same object with one process, whose methods do
nothing: train.py reads as single-process code, and this file is all a
single-process reader can skip.
"""

import contextlib
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from device import DeviceError


class Distributed:
    """The run's processes: who am I, and the few moments they must agree."""

    def __init__(self, force_cpu=False):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank, self.local_rank = 0, 0
        self.local_device = torch.device("cpu")  # where this process computes: device() sets it
        if self.world > 1:
            dist.init_process_group("nccl" if torch.cuda.is_available() and not force_cpu else "gloo")
            self.rank, self.local_rank = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def is_main(self):
        """Rank 0: the process that prints, logs and writes files."""
        return self.rank == 0

    def print(self, *args, **kwargs):
        """print(), on rank 0 only: one process speaks for the run."""
        if self.is_main:
            print(*args, **kwargs)

    def device(self, device):
        """This process's GPU when each process has one, else `device` unchanged.

        Under torchrun an Apple GPU is refused rather than swapped for the
        CPU behind the user's back: gloo, the only backend there, carries no
        MPS tensors (pytorch#160732), and one Mac GPU shared by several
        processes would gain nothing over a single process anyway.
        """
        if self.world > 1 and device.type == "mps":
            raise DeviceError("torchrun cannot train on an Apple GPU (PyTorch's gloo has no MPS support): add --cpu "
                              "to train on CPU processes, or run train.py alone to use the GPU")
        if device.type == "cuda" and self.world > 1:
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)  # before any collective: nccl's object broadcast (share) uses it
        self.local_device = device
        return device

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the block first (it builds the toy set and the feature cache); the others then read them."""
        if self.world > 1 and not self.is_main:
            dist.barrier()
        yield
        if self.world > 1 and self.is_main:
            dist.barrier()

    def sampler(self, dataset, seed):
        """A sampler giving this process its own shard of `dataset` (None: a single process shuffles)."""
        if self.world == 1:
            return None
        return DistributedSampler(dataset, self.world, self.rank, shuffle=True, seed=seed)

    def wrap(self, model, device):
        """The model to train: wrapped in DistributedDataParallel, which averages the gradients."""
        if self.world == 1:
            return model
        return DistributedDataParallel(model, device_ids=[self.local_rank] if device.type == "cuda" else None)

    def share(self, value):
        """Rank 0's `value` on every process (e.g. the name of the TensorBoard run folder)."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, train_loss, speed, valid_losses):
        """The epoch's figures every process uses: the mean training loss over the
        processes, the total speed, and rank 0's validation losses (a tuple), so that
        every process steps its learning-rate scheduler alike. The figures travel on
        this process's device: nccl carries CUDA tensors only."""
        if self.world == 1:
            return train_loss, speed, valid_losses
        summed = torch.tensor([train_loss, speed], dtype=torch.float64, device=self.local_device)
        dist.all_reduce(summed)
        valid = torch.tensor(valid_losses, dtype=torch.float64, device=self.local_device)
        dist.broadcast(valid, src=0)
        return summed[0].item() / self.world, summed[1].item(), tuple(valid.tolist())

    def close(self, finished=True):
        """Tear the process group down; after a finished run, wait for rank 0's last writes first."""
        if self.world == 1:
            return
        if finished:
            dist.barrier()
        dist.destroy_process_group()
