"""bookkeeping.py: what a run counts, its losses read back from the device in groups."""

import pytest
import torch

import bookkeeping
from bookkeeping import TrainingError

@pytest.mark.parametrize("device, read_every", [("cpu", 1), ("cuda", bookkeeping.DEFAULT_READ_EVERY)])
def test_step_losses_are_read_back_in_groups_and_a_non_finite_one_stops_the_run(device, read_every):
    state = bookkeeping.RunState(run_dir="")
    state.watch(torch.device(device))  # only its type is read: no GPU needed
    for step in range(1, read_every):
        state.count_step(torch.tensor(0.5), 2, 1e-3)
        assert state.step == step and state.epoch_patches == 2 * step  # counted at once
    if read_every > 1:
        assert state.epoch_loss == 0.0 and state.mean_epoch_loss == 0.5  # read when asked for
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, step .* try a lower --lr"):
        for _ in range(read_every):
            state.count_step(torch.tensor(float("nan")), 2, 1e-3)
