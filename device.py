"""Where the work runs and in what: the device, the precision, the CPU's class, the memory plan.

    pick_device       CUDA, then Apple MPS, then the CPU (--cpu forces the CPU)
    pick_precision    --precision auto, fp32 or bf16 on that device (PRECISION, by machine_kind)
    describe_device   the "Device: ..." line a run starts with: where, in what, and why
    memory_plan       how batches move to the device and how the model's memory is laid out

Kept apart from cli.py so that the command line imports no torch: every script
imports cli.py first, to say in one line what is missing and to catch Ctrl-C
while the slow imports (torch itself) load.
"""

import sys
from typing import NamedTuple

import torch

from cli import UserError


class DeviceError(UserError):
    """A device or precision asked for that this machine or this PyTorch cannot give."""


def pick_device(force_cpu=False):
    """CUDA, then Apple MPS, then CPU (`force_cpu`: always the CPU).

    An NVIDIA GPU that PyTorch sees but cannot use (most often a driver older
    than the CUDA this torch wheel was built for: torch.cuda.is_available()
    is False while NVML counts the GPU) gets one line saying how to fix it,
    and the run goes on on the CPU.
    """
    if force_cpu:
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.cuda.device_count() > 0:
        print(f"warning: an NVIDIA GPU is present but this PyTorch (CUDA {torch.version.cuda}) cannot use it, most "
              f"often because its driver is older: update the driver to one for CUDA {torch.version.cuda} (for "
              "CUDA 13: R580 or newer) or install torch for an older CUDA from "
              "https://pytorch.org/get-started/locally/; running on the CPU", file=sys.stderr)
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# What --precision auto picks, per kind of machine (machine_kind): (precision, why). bf16 is picked only
# where it was measured no worse (best_model.pth's vocals SDR on the three test sets, 3 seeds, within the
# seeds' spread) and at least 1.2x faster than fp32 (docs/training.md, "Precision, measured on one
# machine"). bf16 training scored 1.1 dB lower on the toy test songs on AVX512-BF16 CPUs, so no kind
# has it yet, fast or not; change an entry after measuring (benchmarks/bench_selection.py, bench_train.py).
PRECISION = {
    "cpu, AMX": ("fp32", "bf16 trained 1.1 dB lower on the toy test songs on AVX512-BF16 CPUs; not measured "
                         "with AMX"),
    "cpu, AVX512-BF16": ("fp32", "bf16 trained 1.1 dB lower on the toy test songs here (3 seeds), though faster on "
                                 "some of these CPUs"),
    "cpu, no bf16": ("fp32", "bf16 is only emulated without AVX512-BF16 or AMX"),
    "cuda, native bf16": ("fp32", "bf16 trained 1.1 dB lower on the toy test songs on CPUs; not measured on a GPU"),
    "cuda, emulated bf16": ("fp32", "bf16 is only emulated before compute capability 8.0"),
    "mps": ("fp32", "bf16 on Apple GPUs was never measured in this project"),
}


def machine_kind(device):
    """The key of PRECISION for `device`: a CPU by its bf16 instructions, a CUDA GPU by whether it computes
    bf16 natively (compute capability 8.0, Ampere, and later; a T4 is 7.5 and emulates it), or MPS."""
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)  # the default counts emulation
        return "cuda, native bf16" if native else "cuda, emulated bf16"
    if device.type == "mps":
        return "mps"
    return {"AMX": "cpu, AMX", "AVX512-BF16": "cpu, AVX512-BF16", "none": "cpu, no bf16"}[cpu_class()]


def cpu_class():
    """This CPU's bf16 instructions: 'AMX', 'AVX512-BF16' (without AMX) or 'none'."""
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    return "AVX512-BF16" if torch.cpu._is_avx512_bf16_supported() else "none"


def describe_cpu():
    """'AVX512, AVX512-BF16, no AMX': the capability PyTorch dispatches to and the bf16 instructions,
    which together set the speed of a CPU (3-4x between classes) and what bf16 costs on it."""
    bf16 = {"AMX": "AVX512-BF16, AMX", "AVX512-BF16": "AVX512-BF16, no AMX", "none": "no AVX512-BF16, no AMX"}
    return f"{torch.backends.cpu.get_cpu_capability()}, {bf16[cpu_class()]}"


def auto_precision(device):
    """('bf16' or 'fp32', why): what --precision auto picks on `device` (PRECISION)."""
    return PRECISION[machine_kind(device)]


def pick_precision(choice, device):
    """torch.bfloat16 for autocast, or None for plain fp32: --precision `choice` (auto, fp32, bf16) on `device`.

    An explicit bf16 is obeyed, even where it is emulated: it is the user's
    measurement to make. On an Apple GPU it needs macOS 14, which
    torch.autocast does not check (in torch 2.11 its macOS test sits in the
    branch for dtypes other than bf16 and fp16, amp/autocast_mode.py).
    """
    if choice == "auto":
        choice = auto_precision(device)[0]
    if choice == "bf16" and device.type == "mps" and not torch.backends.mps.is_macos_or_newer(14, 0):
        raise DeviceError("bf16 on an Apple GPU needs macOS 14 or newer: use --precision fp32")
    return torch.bfloat16 if choice == "bf16" else None


def describe_device(device, amp_dtype):
    """'Device: ...': where the run computes, what kind of machine that is, in which precision, and why
    (what --precision auto picks there, and the reason)."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        where = f"cuda ({torch.cuda.get_device_name(device)}, compute capability {major}.{minor})"
    elif device.type == "cpu":
        where = f"cpu ({describe_cpu()}, {torch.get_num_threads()} threads)"
    else:
        where = device.type
    precision = "bf16 autocast" if amp_dtype is not None else "fp32"
    auto, why = auto_precision(device)
    same = (auto == "bf16") == (amp_dtype is not None)
    return f"Device: {where}, {precision} ({'as auto picks here' if same else f'auto would pick {auto}'}: {why})"


class MemoryPlan(NamedTuple):
    pinned: bool  # batches in page-locked memory, copied with non_blocking=True
    channels_last: bool  # the model in channels_last memory layout


def memory_plan(device, channels_last=None):
    """(pinned, channels_last): how training moves its batches to `device` and lays out the model's memory.

    pinned: the DataLoader pins the batches in page-locked memory and they are
    copied with non_blocking=True; only to a CUDA GPU, where that copy
    overlaps the step. To an Apple GPU a non-blocking copy from ordinary
    memory can silently corrupt the data (pytorch#189690, #139550), and on
    the CPU there is nothing to copy.
    channels_last: `channels_last` if given (the flag typed), else on except
    on an Apple GPU, where torch 2.11's channels_last convolution backward
    is about 30x slower (pytorch#193349, fixed after 2.11: a typed flag is
    obeyed, to measure a newer torch).
    """
    if channels_last is None:
        channels_last = device.type != "mps"
    return MemoryPlan(pinned=device.type == "cuda", channels_last=channels_last)
