"""checkpoints.py: what is not a checkpoint, or lacks a field, is one sentence; the default one is found."""

import os

import pytest
import torch

from checkpoints import REQUIRED_FIELDS, CheckpointError, load_checkpoint
from unet_model import UNetConfig

def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    bogus = tmp_path / "model.pth"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(str(bogus))


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


def test_without_checkpoint_flag_the_projects_own_model_is_found_from_another_folder(tmp_path, monkeypatch,
                                                                                      capsys):
    import checkpoints

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(checkpoints, "PROJECT_DIR", str(project))
    monkeypatch.chdir(elsewhere)
    with pytest.raises(checkpoints.CheckpointError) as error:
        checkpoints.find_checkpoint()
    assert str(error.value).startswith(f"no trained model: checkpoints/best_model.pth is not in {elsewhere} nor "
                                       f"in {project}; train one with ")
    (project / "checkpoints").mkdir(parents=True)
    (project / "checkpoints" / "best_model.pth").write_bytes(b"")
    assert checkpoints.find_checkpoint() == str(project / "checkpoints" / "best_model.pth")
    assert capsys.readouterr().out == f"Using {project / 'checkpoints' / 'best_model.pth'}\n"
    (elsewhere / "checkpoints").mkdir()
    (elsewhere / "checkpoints" / "best_model.pth").write_bytes(b"")
    assert checkpoints.find_checkpoint() == os.path.join(str(elsewhere), "checkpoints", "best_model.pth")
    assert checkpoints.find_checkpoint("mine.pth") == "mine.pth"


def test_a_checkpoint_of_a_removed_option_names_the_commit_that_reads_it(tiny_checkpoint, tmp_path):
    from checkpoints import CheckpointError, load_model

    state = torch.load(tiny_checkpoint, weights_only=True)
    for value, loads in (("none", True), ("log", False)):  # "none", the lab's, was the default: the same model
        path = tmp_path / f"{value}.pth"
        torch.save({**state, "model_config": {**state["model_config"], "input_compression": value}}, path)
        if loads:
            assert load_model(str(path))[0].config == UNetConfig(channels=(4, 8))
        else:
            with pytest.raises(CheckpointError, match="input_compression='log'.*commit b6b7f75"):
                load_model(str(path))
