"""What comes in, checked once where it enters: checkpoints' fields, damaged audio files."""

import pytest
import torch

from checkpoints import REQUIRED_FIELDS, CheckpointError, load_checkpoint


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_a_checkpoint_lacking_a_field_names_it_and_the_version_that_wrote_it(tiny_checkpoint, tmp_path, field):
    state = torch.load(tiny_checkpoint, weights_only=True)
    del state[field]
    path = tmp_path / "old.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(str(path))
    message = str(error.value)
    assert f"has no {field} field" in message and f"torch {torch.__version__}" in message
    assert "this version reads format 1, with format, model, model_config, signal, epoch" in message
    assert "\n" not in message
