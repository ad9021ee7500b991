"""train.py: the loss, the flags, a tiny end-to-end run, resume, and interruption."""

import csv
import glob
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch

import reports
import train
from checkpoints import load_checkpoint
from train import L1Loss
from unet_model import UNet, UNetConfig

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILL_SEED = 2017  # the random SIGKILL test's kill times
TINY = ["--channels", "4", "8", "--batch-size", "4", "--samples-per-track", "2", "--quiet",
        "--checkpoint-every", "1", "--figure-every", "1", "--cpu"]  # --cpu: subprocesses on a Mac see MPS (conftest)


def tiny_args(toy_root, tmp_path, *extra):
    return TINY + ["--root", toy_root, "--cache-dir", str(tmp_path / "cache"),
                   "--save-dir", str(tmp_path / "ckpt"), *extra]


def read_events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(run_dir)
    events.Reload()
    return events


def test_l1_loss_matches_hand_computation():
    mask = torch.tensor([[0.5, 1.0], [0.0, 0.25]])
    mix = torch.tensor([[2.0, 4.0], [3.0, 8.0]])
    vocals = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    # |1-1| + |4-1| + |0-1| + |2-1| = 5, over 4 elements
    assert L1Loss()(mask, mix, vocals).item() == pytest.approx(1.25)


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs: must be at least 1"),
    (["--batch-size", "-1"], "--batch-size: must be at least 1"),
    (["--lr", "0"], "--lr: must be above 0"),
    (["--lr", "nan"], "--lr: must be above 0"),
    (["--lr", "50"], "--lr: must be above 0 and at most 1"),
    (["--epochs", "ten"], "--epochs: expected a whole number"),
    (["--n-songs", "0"], "--n-songs: must be at least 1"),
    (["--dropout", "1.5"], "--dropout: must be at least 0 and at most 0.99"),
    (["--num-workers", "-2"], "--num-workers: must be at least 0"),
    (["--seed", "-1"], "--seed: must be at least 0"),
    (["--precision", "fp8"], "--precision: invalid choice"),
])
def test_bad_flags_are_refused_with_a_message(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.get_args(flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("quick_figures")
def test_bad_model_flags_are_one_sentence(toy_root, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        train.main(tiny_args(toy_root, tmp_path, "--kernel-size", "4"))
    assert "bad model flags" in str(exit_info.value.code) and "odd" in str(exit_info.value.code)


def test_loss_decreases_when_overfitting_one_batch():
    torch.manual_seed(0)
    model = UNet(UNetConfig(channels=(8, 16)))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    mix = torch.rand(4, 65, 32)
    vocals = mix * (torch.rand(4, 65, 32) > 0.5)  # a binary mask is the answer
    losses = []
    for _ in range(40):
        loss = L1Loss()(model(mix), mix, vocals)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def check_tensorboard(run_dir, epochs):
    """The lab-report layout: four loss lines (train, the model kept, the weights as trained, the constant
    mask) on one chart and three SDR lines on the next, each with a
    point per epoch (no single-dot cards, nothing twice after a resume), the learning rate per step, the
    figures, the audio, the flags once."""
    every = list(range(1, epochs + 1))
    lines = {name: read_events(os.path.join(run_dir, name)) for name in reports.LINES}
    for name in reports.LOSS_LINES:
        assert [e.step for e in lines[name].Scalars("epoch/loss (x 1e-3)")] == every, name
    for name in reports.SDR_LINES:
        assert [e.step for e in lines[name].Scalars("epoch/vocals SDR (dB)")] == every, name
    values = {name: [e.value for e in events.Scalars(tag)] for name, events in lines.items()
              for tag in events.Tags()["scalars"] if tag.startswith("epoch/")}
    assert len(set(values["constant_mask"])) == 1 and 0.1 < values["constant_mask"][0] < 100  # x 1000
    assert len(set(values["mixture"])) == 1 and len(set(values["oracle"])) == 1  # the floor and the ceiling
    assert values["mixture"][0] < values["oracle"][0]
    steps = len(lines["train"].Scalars("step/loss (x 1e-3)"))
    assert steps > epochs and len(lines["train"].Scalars("step/learning rate")) == steps
    run = read_events(run_dir)
    assert set(run.Tags()["scalars"]) == {"speed/patches per second"}
    assert [e.step for e in run.Scalars("speed/patches per second")] == every
    assert {"figures/loss curve", "figures/mix, mask, vocals"} <= set(run.Tags()["images"])
    assert set(run.Tags()["audio"]) == {"audio 1 mix", "audio 2 estimated vocals", "audio 3 true vocals"}
    assert [len(run.Tensors(tag)) for tag in run.Tags()["tensors"]] == [1]  # the config text, once


def test_tiny_run_writes_everything_and_resumes_in_the_same_run(toy_root, tmp_path):
    save_dir = tmp_path / "ckpt"
    train.main(tiny_args(toy_root, tmp_path, "--epochs", "2"))

    for name in ("best_model.pth", "final_model.pth", "last_model.pth", "checkpoint_epoch_1.pth",
                 "checkpoint_epoch_2.pth", "history.csv", "loss_curve.png"):
        assert (save_dir / name).is_file(), name
    state = load_checkpoint(str(save_dir / "final_model.pth"))
    assert state["epoch"] == 2 and state["model_config"]["channels"] == (4, 8)
    assert state["signal"]["sample_rate"] == 8192 and state["signal"]["hop_length"] == 768
    assert set(state) >= {"model", "optimizer", "best_valid_loss"}
    runs = glob.glob(str(save_dir / "logs" / "*"))
    assert len(runs) == 1 and os.path.basename(runs[0])[8] == "_"  # YYYYMMDD_HHMMSS
    check_tensorboard(runs[0], epochs=2)
    with open(save_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # the SDR between its floor and its ceiling, in dB
        assert float(row["mixture_sdr"]) < float(row["valid_sdr"]) < float(row["oracle_sdr"])

    # No model flags on resume: the stored config is used.
    train.main(["--resume", "--save-dir", str(save_dir), "--epochs", "3", "--quiet",
                "--root", toy_root, "--cache-dir", str(tmp_path / "cache")])
    assert glob.glob(str(save_dir / "logs" / "*")) == runs
    check_tensorboard(runs[0], epochs=3)
    with open(save_dir / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [1, 2, 3]
    assert load_checkpoint(str(save_dir / "final_model.pth"))["epoch"] == 3
    assert (save_dir / "checkpoint_epoch_3.pth").is_file()


def test_resume_with_nothing_to_resume_says_so(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--resume", "--save-dir", str(tmp_path / "empty"), "--quiet"])
    assert "found no checkpoint" in str(exit_info.value.code)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])  # kill -9: test_sigkill_at_random_moments_...
def test_a_stopped_run_saves_as_it_stands_and_resumes_as_its_hint_says(toy_root, tmp_path, sig):
    """Ctrl-C, and the terminal closed (SIGHUP): last_model.pth as it stands, every file whole, and the
    printed hint, pasted in a shell where this environment is not active, resumes the run."""
    save_dir = tmp_path / "ckpt"
    command = [sys.executable, os.path.join(PROJECT, "train.py"),
               *tiny_args(toy_root, tmp_path, "--epochs", "40")]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline = time.time() + 120
    while not (save_dir / "checkpoint_epoch_2.pth").exists():
        assert process.poll() is None and time.time() < deadline, process.stdout.read()
        time.sleep(0.05)
    process.send_signal(sig)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 130 and "Interrupted: saved" in output and "Traceback" not in output
    for path in glob.glob(str(save_dir / "*.pth")):
        load_checkpoint(path)  # every file left behind is whole
    assert not glob.glob(str(save_dir / ".tmp-*"))
    done = max(load_checkpoint(path)["epoch"] for path in glob.glob(str(save_dir / "*.pth")))
    assert 2 <= done < 40

    more = f"--epochs {done + 1} --quiet --root {shlex.quote(toy_root)} --cache-dir {tmp_path / 'cache'}"
    resume = output.split("continue with: ")[1].splitlines()[0]
    resumed = subprocess.run(f"{resume} {more}", shell=True, cwd=tmp_path, capture_output=True, text=True,
                             timeout=120, env=dict(os.environ, PATH="/usr/bin:/bin"))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    tensorboard = resumed.stdout.split("TensorBoard: ")[1].split(" --logdir")[0]
    assert os.access(os.path.join(tmp_path, tensorboard), os.X_OK), tensorboard  # also as printed
    assert load_checkpoint(str(save_dir / "final_model.pth"))["epoch"] == done + 1
    assert not glob.glob(str(save_dir / ".tmp-*"))


@pytest.mark.slow
def test_torchrun_two_processes_train_and_resume(toy_root, tmp_path):
    """DistributedDataParallel on 2 CPU processes (gloo): rank 0 alone writes; resume continues."""
    save_dir = tmp_path / "ckpt"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                os.path.join(PROJECT, "train.py")]
    first = subprocess.run([*torchrun, *tiny_args(toy_root, tmp_path, "--epochs", "2", "--cpu")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("epoch   2/2") == 1 and "2 processes" in first.stdout  # rank 0 prints alone
    assert "3 per process" in first.stdout  # each rank trains on its own half of the 6 patches
    runs = glob.glob(str(save_dir / "logs" / "*"))
    assert len(runs) == 1

    resumed = subprocess.run([*torchrun, "--resume", "--save-dir", str(save_dir), "--epochs", "3", "--quiet",
                              "--root", toy_root, "--cache-dir", str(tmp_path / "cache"), "--cpu"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert glob.glob(str(save_dir / "logs" / "*")) == runs
    assert [e.step for e in read_events(os.path.join(runs[0], "valid")).Scalars("epoch/loss (x 1e-3)")] == [1, 2, 3]
    assert load_checkpoint(str(save_dir / "final_model.pth"))["epoch"] == 3


@pytest.mark.usefixtures("quick_figures")
def test_same_seed_gives_same_losses_and_weights(toy_root, tmp_path):
    histories, weights = [], []
    for run in ("a", "b"):
        histories.append(train.train(train.get_args(
            TINY + ["--root", toy_root, "--cache-dir", str(tmp_path / "cache"), "--epochs", "2",
                    "--save-dir", str(tmp_path / run), "--seed", "3"])))
        weights.append(load_checkpoint(str(tmp_path / run / "final_model.pth"))["model"])
    for first, second in zip(*histories):
        assert first["train_loss"] == pytest.approx(second["train_loss"], rel=1e-6)
        assert first["valid_loss"] == pytest.approx(second["valid_loss"], rel=1e-6)
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name])


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_the_run(toy_root, tmp_path):
    """Kill -9 a run three times at random moments (some land inside a
    checkpoint write); every checkpoint left is loadable, and resuming each
    time finishes with exactly the epochs asked for, each counted once."""
    import random

    rng = random.Random(KILL_SEED)  # fixed, so that a failure can be replayed
    save_dir, epochs = tmp_path / "ckpt", 12
    base = [sys.executable, os.path.join(PROJECT, "train.py"),
            *tiny_args(toy_root, tmp_path, "--epochs", str(epochs), "--checkpoint-every", "1")]
    command = base
    for _ in range(3):
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while not (save_dir / "last_model.pth").exists() and process.poll() is None:
            assert time.time() < deadline
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))
        process.kill()
        process.wait()
        for path in glob.glob(str(save_dir / "*.pth")):
            load_checkpoint(path)  # whole, whatever the moment of the kill
        command = [*base, "--resume"]
    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    final = load_checkpoint(str(save_dir / "final_model.pth"))
    assert final["epoch"] == epochs
    assert [row["epoch"] for row in final["history"]] == list(range(1, epochs + 1))
    assert load_checkpoint(str(save_dir / "best_model.pth"))["epoch"] <= epochs
    assert not glob.glob(str(save_dir / ".tmp-*"))


@pytest.mark.usefixtures("quick_figures")
def test_output_to_a_log_file_has_no_progress_frames_and_says_device_and_time_left(toy_root, tmp_path, capsys):
    """Not a terminal: no tqdm carriage returns, every epoch on a line of its own, an estimate of the rest."""
    args = [a for a in tiny_args(toy_root, tmp_path, "--epochs", "2") if a != "--quiet"]
    train.main(args)  # stdout and stderr are pytest's captures here, not a terminal, as with a log file
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    lines = out.splitlines()
    assert lines[0].startswith(f"Device: cpu ({torch.backends.cpu.get_cpu_capability()}, ")
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2 and " s left" in epochs[0] and "left" not in epochs[1]


@pytest.mark.parametrize("flags, message", [(["--resume"], "--resume found no checkpoint"),
                                            (["--root", "train"], "point --root one level up")])
@pytest.mark.usefixtures("quick_figures")
def test_a_failed_start_leaves_no_save_folder(toy_root, tmp_path, flags, message):
    flags = [os.path.join(toy_root, "train") if flag == "train" else flag for flag in flags]
    with pytest.raises(SystemExit) as stop:
        train.main([*flags, "--save-dir", str(tmp_path / "ckpt"), "--cache-dir", str(tmp_path / "cache")]
                   + ([] if "--root" in flags else ["--root", toy_root]))
    assert message in str(stop.value.code)
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.usefixtures("quick_figures")
def test_ctrl_c_in_the_middle_of_an_epoch_resumes_on_the_same_step(toy_root, tmp_path, monkeypatch):
    """Ctrl-C after the first step of epoch 2 (of 3, 2 steps each), then --resume: the checkpoint's step,
    weights, optimizer and scheduler belong together, so the per-step axis never goes back and the
    scheduler is stepped once per epoch."""
    calls = []

    class CtrlCOnStep3(train.L1Loss):
        def forward(self, mask, mix_mag, vocals_mag):
            if mask.requires_grad:  # a training step, not validation
                calls.append(1)
                if len(calls) == 3:
                    signal.raise_signal(signal.SIGINT)  # noted now, acted on once the step is done
            return super().forward(mask, mix_mag, vocals_mag)

    monkeypatch.setattr(train, "L1Loss", CtrlCOnStep3)
    flags = tiny_args(toy_root, tmp_path, "--epochs", "3")
    with pytest.raises(SystemExit) as stop:
        train.main(flags)
    assert stop.value.code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers were given back
    interrupted = load_checkpoint(str(tmp_path / "ckpt" / "last_model.pth"))
    assert interrupted["epoch"] == 1 == interrupted["scheduler"]["last_epoch"] and interrupted["step"] == 3

    train.main(flags + ["--resume"])
    final = load_checkpoint(str(tmp_path / "ckpt" / "final_model.pth"))
    assert final["step"] == 6 and final["scheduler"]["last_epoch"] == 3  # 3 epochs of 2 steps, each step once
    assert [row["epoch"] for row in final["history"]] == [1, 2, 3]
    (run,) = glob.glob(str(tmp_path / "ckpt" / "logs" / "*"))
    steps = [e.step for e in read_events(os.path.join(run, "train")).Scalars("step/loss (x 1e-3)")]
    assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.usefixtures("quick_figures")
def test_a_resumed_run_hides_what_a_killed_run_logged_past_its_checkpoint(toy_root, tmp_path):
    """kill -9 after TensorBoard got steps the last checkpoint does not have: the resumed run logs those steps
    again, and TensorBoard shows each step once, in order."""
    from torch.utils.tensorboard import SummaryWriter

    flags = tiny_args(toy_root, tmp_path, "--epochs", "2")
    train.main(flags)  # 2 epochs of 2 steps
    (run,) = glob.glob(str(tmp_path / "ckpt" / "logs" / "*"))
    killed = SummaryWriter(os.path.join(run, "train"))  # what a run killed in epoch 3 had flushed
    for step in (5, 6):
        killed.add_scalar("step/loss (x 1e-3)", 99.0, step)
    killed.close()
    train.main(flags[:-1] + ["3", "--resume"])
    steps = read_events(os.path.join(run, "train")).Scalars("step/loss (x 1e-3)")
    assert [e.step for e in steps] == [1, 2, 3, 4, 5, 6] and 99.0 not in [e.value for e in steps]
