"""The kind of machine: which device, which precision and memory layout, and several processes on a device.

No GPU or Mac runs these tests: CUDA and MPS are mocked at the functions
torch 2.11 answers from (torch/cuda/__init__.py, torch/cpu/__init__.py).
"""

import os
from types import SimpleNamespace

import pytest
import torch

import distributed
from device import (PRECISION, DeviceError, auto_precision, cpu_class, describe_device, machine_kind, memory_plan,
                    pick_device, pick_precision)
from distributed import Distributed

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


def test_the_suite_runs_on_the_cpu():
    """conftest hides the accelerators from the tests and, through the environment, from their subprocesses."""
    assert pick_device() == CPU and os.environ["CUDA_VISIBLE_DEVICES"] == ""


def fake_gpu(monkeypatch, major, minor):
    """A CUDA GPU of compute capability major.minor, as torch.cuda sees one."""
    properties = SimpleNamespace(major=major, minor=minor, name=f"Fake GPU {major}.{minor}")
    for name, value in {"is_available": lambda: True, "current_device": lambda: 0,
                        "get_device_properties": lambda device=None: properties,
                        "_check_bf16_tensor_supported": lambda device: True}.items():  # bf16 emulated everywhere
        monkeypatch.setattr(torch.cuda, name, value)


@pytest.mark.parametrize("major, minor, kind", [(7, 5, "cuda, emulated bf16"), (8, 0, "cuda, native bf16"),
                                                 (9, 0, "cuda, native bf16")])
def test_a_gpu_is_told_apart_by_native_bf16_and_auto_follows_its_row(monkeypatch, major, minor, kind):
    fake_gpu(monkeypatch, major, minor)
    assert torch.cuda.is_bf16_supported()  # what the old rule asked: True on a T4 too, by emulation
    assert machine_kind(CUDA) == kind  # a T4 (7.5) is not taken for a native-bf16 GPU
    precision, why = PRECISION[kind]
    assert pick_precision("auto", CUDA) is (torch.bfloat16 if precision == "bf16" else None)
    assert pick_precision("bf16", CUDA) is torch.bfloat16 and pick_precision("fp32", CUDA) is None
    line = describe_device(CUDA, pick_precision("auto", CUDA))
    assert line.startswith(f"Device: cuda (Fake GPU {major}.{minor}, compute capability {major}.{minor}), ")
    assert line.endswith(f"(as auto picks here: {why})")


def test_an_explicit_precision_other_than_auto_s_is_said_with_auto_s_reason(monkeypatch):
    fake_gpu(monkeypatch, 7, 5)
    assert describe_device(CUDA, torch.bfloat16).endswith(
        "bf16 autocast (auto would pick fp32: bf16 is only emulated before compute capability 8.0)")


@pytest.mark.parametrize("amx, avx512_bf16, expected", [(True, True, "AMX"), (False, True, "AVX512-BF16"),
                                                         (False, False, "none")])
def test_auto_on_a_cpu_follows_the_table_of_its_class(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert cpu_class() == expected
    precision, why = PRECISION[machine_kind(CPU)]
    assert auto_precision(CPU) == (precision, why)
    assert pick_precision("auto", CPU) is (torch.bfloat16 if precision == "bf16" else None)
    line = describe_device(CPU, pick_precision("auto", CPU))
    bf16 = {"AMX": "AVX512-BF16, AMX", "AVX512-BF16": "AVX512-BF16, no AMX", "none": "no AVX512-BF16, no AMX"}
    assert line.startswith(f"Device: cpu ({torch.backends.cpu.get_cpu_capability()}, {bf16[expected]}, "
                           f"{torch.get_num_threads()} threads), ")
    assert line.endswith(f"(as auto picks here: {why})")


@pytest.mark.parametrize("macos_14, explicit", [(True, torch.bfloat16), (False, DeviceError)])
def test_an_apple_gpu_trains_in_fp32_unless_bf16_is_asked_for_on_macos_14(monkeypatch, macos_14, explicit):
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: macos_14)
    assert pick_precision("auto", MPS) is None and pick_precision("fp32", MPS) is None
    if explicit is DeviceError:
        with pytest.raises(DeviceError, match="needs macOS 14 or newer: use --precision fp32$"):
            pick_precision("bf16", MPS)
    else:
        assert pick_precision("bf16", MPS) is explicit
    assert describe_device(MPS, None) == "Device: mps, fp32 (as auto picks here: bf16 on Apple GPUs was never " \
                                         "measured in this project)"


def test_a_gpu_that_cannot_be_used_is_one_line_and_the_run_goes_on_on_the_cpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # NVML sees it, CUDA does not (an old driver)
    assert pick_device() == CPU
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: an NVIDIA GPU is present") and "R580" in err
    assert pick_device(force_cpu=True) == CPU and capsys.readouterr().err == ""  # --cpu: asked for, no warning


def test_mps_is_picked_after_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == MPS and pick_device(force_cpu=True) == CPU
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("device, typed, pinned, channels_last", [
    (CUDA, None, True, True), (CPU, None, False, True), (MPS, None, False, False),
    (MPS, True, False, True), (CPU, False, False, False)])
def test_memory_plan_pins_only_for_cuda_and_keeps_apple_gpus_contiguous_unless_asked(device, typed, pinned,
                                                                                      channels_last):
    assert memory_plan(device, typed) == (pinned, channels_last)


def test_torchrun_refuses_an_apple_gpu_in_one_sentence(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    processes = Distributed()
    assert processes.device(MPS) == MPS  # one process: the GPU is fine
    processes.world = 2  # as under torchrun
    with pytest.raises(DeviceError, match=r"^torchrun cannot train on an Apple GPU .*: add --cpu"):
        processes.device(MPS)


def test_agree_sends_its_figures_on_the_process_device(monkeypatch):
    """nccl carries CUDA tensors only: the figures every process agrees on are built on its device, not the CPU."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    processes = Distributed()
    processes.world = 2  # as under torchrun; the collectives below are spies, no process group is needed
    device = processes.device(torch.device("meta"))  # a device other than the CPU, on any machine
    sent = []

    class Sent(Exception):
        pass

    def broadcast(tensor, src):
        sent.append(tensor.device)
        raise Sent  # a meta tensor has no value to read back

    monkeypatch.setattr(distributed.dist, "all_reduce", lambda tensor: sent.append(tensor.device))
    monkeypatch.setattr(distributed.dist, "broadcast", broadcast)
    with pytest.raises(Sent):
        processes.agree(1e-3, 30.0, (2e-3, 2.5e-3))
    assert sent == [device, device]
