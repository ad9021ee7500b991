"""averaging.py: the moving average of the weights, its BatchNorm statistics, and a run that keeps one."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import train
from averaging import WeightAverage, tiling_patches
from checkpoints import load_checkpoint
from data import PatchDataset
from test_train import TINY, history_of


def linear_with(value):
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(value)
    return model


def test_the_average_is_the_debiased_moving_average_of_the_weights():
    decay, weights = 0.9, [1.0, 3.0, -2.0, 5.0]
    average = WeightAverage(linear_with(100.0), decay, torch.zeros(1, 2))
    for w in weights:
        average.update(linear_with(w))
    n = len(weights)
    by_hand = sum(decay ** (n - k) * (1 - decay) * w for k, w in enumerate(weights, 1)) / (1 - decay ** n)
    assert average.model.weight[0, 0].item() == pytest.approx(by_hand, rel=1e-6)
    assert average.updates == n


def test_the_first_update_gives_the_weights_themselves():
    average = WeightAverage(linear_with(100.0), 0.999, torch.zeros(1, 2))
    average.update(linear_with(7.0))
    assert average.model.weight[0, 0].item() == pytest.approx(7.0)


def norm_model():
    model = nn.Sequential(nn.Unflatten(1, (1, 4)), nn.BatchNorm1d(1), nn.Flatten())  # (B, 4) -> (B, 4)
    model[1].running_mean.fill_(50.0)  # stale statistics, as averaged weights would carry
    return model


def test_refreshed_measures_the_batch_norm_statistics_on_the_patches_and_draws_nothing():
    patches = torch.arange(24, dtype=torch.float32).reshape(6, 4)
    average = WeightAverage(norm_model(), 0.9, patches, batch_size=3)
    rng = torch.get_rng_state()
    model = average.refreshed(torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), rng)
    norm = model[1]
    batches = patches.split(3)
    assert norm.running_mean.item() == pytest.approx(np.mean([b.mean().item() for b in batches]))
    assert norm.running_var.item() == pytest.approx(np.mean([b.var().item() for b in batches]), rel=1e-5)
    assert not norm.training and norm.momentum == 0.1  # back as nn.BatchNorm1d builds it, in eval mode
    model.train()
    assert not any(p.requires_grad for p in model.parameters())


def test_tiling_patches_spread_over_the_tiling_at_most_the_number_asked():
    features = [np.full((2, 3, 10), i + 1, dtype=np.complex64) for i in range(4)]  # 4 songs of 10 frames
    tiling = PatchDataset(features, 4)  # 3 tiles per song: 12
    patches = tiling_patches(tiling, most=4)
    assert patches.shape == (4, 3, 4)
    assert [p.max().item() for p in patches] == [2.0, 4.0, 6.0, 8.0]  # one per song: its mix is 2 (i + 1)
    assert len(tiling_patches(tiling, most=100)) == 12


def test_a_run_with_averages_trains_as_one_without_and_validates_them(toy_root, tmp_path):
    common = TINY + ["--root", toy_root, "--cache-dir", str(tmp_path / "cache"), "--epochs", "2", "--seed", "5"]
    plain = train.train(train.get_args(common + ["--save-dir", str(tmp_path / "plain")]))
    averaged = train.train(train.get_args(common + ["--save-dir", str(tmp_path / "avg"),
                                                    "--average-weights", "0.9", "0.99"]))
    for a, b in zip(plain, averaged):
        assert a["train_loss"] == b["train_loss"] and a["valid_loss"] == b["valid_loss"]
    rows = history_of(tmp_path / "avg")
    assert all(np.isfinite(row["averaged_valid_loss_0.9"]) and np.isfinite(row["averaged_valid_loss_0.99"])
               for row in rows)
    saved = load_checkpoint(str(tmp_path / "avg" / "final_model.pth"))["averaged"]
    assert [s["decay"] for s in saved] == [0.9, 0.99] and saved[0]["updates"] > 0
