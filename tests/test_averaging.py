"""averaging.py: the moving average of the weights (against the plain formula), its BatchNorm statistics,
going on after --resume, and a run that keeps it: trained as without it, the average saved."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import train
from averaging import WeightAverage, measure_batch_norm, tiling_patches
from checkpoints import load_checkpoint
from data import PatchDataset
from test_train import TINY
from unet_model import UNet, UNetConfig

CPU = torch.device("cpu")


def linear_with(value):
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(value)
    return model


@settings(max_examples=40, deadline=None)
@given(decay=st.floats(0.01, 0.999), weights=st.lists(st.floats(-100, 100), min_size=1, max_size=30))
def test_the_average_is_the_debiased_moving_average_of_the_weights(decay, weights):
    """The plain formula, sum_k decay^(n-k) (1 - decay) w_k / (1 - decay^n), against the update in place."""
    average = WeightAverage(linear_with(1e6), decay, torch.zeros(1, 2), batch_size=1)
    for w in weights:
        average.update(linear_with(w))
    n = len(weights)
    by_hand = sum(decay ** (n - k) * (1 - decay) * w for k, w in enumerate(weights, 1)) / (1 - decay ** n)
    assert average.average.weight[0, 0].item() == pytest.approx(by_hand, rel=1e-4, abs=1e-3)
    assert average.updates == n
    assert average.unet.weight[0, 0].item() == 1e6  # the weights that train are never touched


def test_without_an_average_the_model_kept_is_the_unet_itself():
    unet = linear_with(3.0)
    average = WeightAverage(unet, 0.0, torch.zeros(1, 2), batch_size=1)
    average.update(linear_with(5.0))
    assert average.kept(CPU) is unet and average.resume_fields() == {}


def norm_model():
    model = nn.Sequential(nn.Unflatten(1, (1, 4)), nn.BatchNorm1d(1), nn.Flatten(), nn.Dropout(0.5))  # (B, 4)
    model[1].running_mean.fill_(50.0)  # stale statistics, as averaged weights would carry
    return model


def test_the_batch_norm_statistics_are_measured_on_the_patches_drawing_nothing():
    patches = torch.arange(24, dtype=torch.float32).reshape(6, 4)
    model = norm_model()
    rng = torch.get_rng_state()
    measure_batch_norm(model, patches, 3, CPU)
    assert torch.equal(torch.get_rng_state(), rng)  # the dropout stayed in eval mode
    norm, batches = model[1], patches.split(3)
    assert norm.running_mean.item() == pytest.approx(np.mean([b.mean().item() for b in batches]))
    assert norm.running_var.item() == pytest.approx(np.mean([b.var().item() for b in batches]), rel=1e-5)
    assert not model.training and not norm.training and norm.momentum == 0.1  # as nn.BatchNorm1d builds it


def test_the_model_kept_has_its_statistics_measured_once_per_update():
    patches = torch.arange(24, dtype=torch.float32).reshape(6, 4)
    average = WeightAverage(norm_model(), 0.9, patches, batch_size=3)
    average.update(average.unet)
    kept = average.kept(CPU)
    assert kept[1].running_mean.item() == pytest.approx(11.5)  # the mean of the patches, not the stale 50
    kept[1].running_mean.fill_(-1.0)
    assert average.kept(CPU)[1].running_mean.item() == -1.0  # the same update count: not measured again
    average.update(average.unet)
    assert average.kept(CPU)[1].running_mean.item() == pytest.approx(11.5)


def test_tiling_patches_spread_over_the_tiling_at_most_the_number_asked():
    features = [np.full((2, 3, 10), i + 1, dtype=np.complex64) for i in range(4)]  # 4 songs of 10 frames
    tiling = PatchDataset(features, 4)  # 3 tiles per song: 12
    patches = tiling_patches(tiling, most=4)
    assert patches.shape == (4, 3, 4)
    assert [p.max().item() for p in patches] == [2.0, 4.0, 6.0, 8.0]  # one per song: its mix is 2 (i + 1)
    assert len(tiling_patches(tiling, most=100)) == 12


def small_unet(seed):
    torch.manual_seed(seed)
    return UNet(UNetConfig(channels=(2, 4)))


def test_a_resumed_average_goes_on_as_if_never_stopped():
    patches = torch.rand(4, 513, 128)
    trajectory = [small_unet(seed) for seed in range(5)]
    straight = WeightAverage(small_unet(0), 0.9, patches, batch_size=2)
    for unet in trajectory:
        straight.update(unet)
    stopped = WeightAverage(small_unet(0), 0.9, patches, batch_size=2)
    for unet in trajectory[:3]:
        stopped.update(unet)
    saved = {"model": stopped.kept(CPU).state_dict(), **stopped.resume_fields()}
    resumed = WeightAverage(small_unet(9), 0.9, patches, batch_size=2)
    resumed.resume(saved)
    assert all(torch.equal(a, b) for a, b in zip(resumed.unet.state_dict().values(),
                                                  stopped.unet.state_dict().values()))
    for unet in trajectory[3:]:
        resumed.update(unet)
    assert resumed.updates == 5
    for a, b in zip(resumed.kept(CPU).state_dict().values(), straight.kept(CPU).state_dict().values()):
        torch.testing.assert_close(a, b)
    other = WeightAverage(small_unet(9), 0.5, patches, batch_size=2)  # another decay: it begins again
    other.resume(saved)
    assert other.updates == 0


@pytest.mark.usefixtures("quick_figures")
def test_a_run_trains_as_without_the_average_and_saves_the_average(toy_root, tmp_path):
    common = TINY + ["--root", toy_root, "--cache-dir", str(tmp_path / "cache"), "--epochs", "2", "--seed", "5"]
    plain = train.train(train.get_args(common + ["--save-dir", str(tmp_path / "plain"), "--average-weights", "0"]))
    averaged = train.train(train.get_args(common + ["--save-dir", str(tmp_path / "avg")]))
    for a, b in zip(plain, averaged):  # the same steps: the weights as trained validate alike
        assert a["train_loss"] == b["train_loss"] and a["trained_valid_loss"] == b["trained_valid_loss"]
        assert a["valid_loss"] == a["trained_valid_loss"]
    assert any(b["valid_loss"] != b["trained_valid_loss"] for b in averaged)  # the average is another model
    final = load_checkpoint(str(tmp_path / "avg" / "final_model.pth"))
    plain_final = load_checkpoint(str(tmp_path / "plain" / "final_model.pth"))
    assert final["average_updates"] == final["step"] and final["average_decay"] == 0.99
    for name, value in final["trained_model"].items():  # the weights as trained, where --resume goes on
        torch.testing.assert_close(value, plain_final["model"][name])
    assert "trained_model" not in plain_final
    assert not all(torch.equal(final["model"][name], value) for name, value in final["trained_model"].items())
