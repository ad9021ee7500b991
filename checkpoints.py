"""The checkpoint format: build, save atomically, load, find the newest or the default, rebuild the model.

A checkpoint is one dict saved with torch.save:

    format          _CHECKPOINT_FORMAT, refused if different
    model           the UNet's state_dict (never a pickled model): the model a run keeps,
                    the moving average of its weights (averaging.py) unless trained without
    model_config    UNetConfig as a dict: inference rebuilds the model from it
    signal          SignalConfig as a dict: the STFT the model was trained on
    epoch           epochs done
    torch_version   the torch that wrote it
and, from train.py, what --resume needs: run_id (runs.py), args (the run's
flags), the weights as trained and the average's count (trained_model,
average_updates, average_decay: averaging.py), optimizer, scheduler, rng,
and bookkeeping.RunState's fields (step, best_valid_loss, best_epoch,
best_valid_sdr, best_sdr_epoch, history, run_dir, constant_mask_loss,
reference_sdr, and the epoch in progress).
"""

import os

import torch

from spectral import SignalConfig
from cli import UserError, pasteable, runnable
from device import memory_plan
from files import atomic_path
from unet_model import UNet, UNetConfig

_CHECKPOINT_FORMAT = 1
REQUIRED_FIELDS = ("format", "model", "model_config", "signal", "epoch")  # what build_checkpoint always writes
PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
_DEFAULT_CHECKPOINT = os.path.join("checkpoints", "best_model.pth")  # where `python train.py` writes it


class CheckpointError(UserError):
    """A checkpoint that is missing, damaged or not ours."""


def build_checkpoint(model, model_config, signal_config, epoch, **training_state):
    """The dict that save_checkpoint writes; `training_state` adds train.py's resume fields."""
    return {"format": _CHECKPOINT_FORMAT, "model": model.state_dict(), "model_config": model_config.to_dict(),
            "signal": signal_config.to_dict(), "epoch": epoch, "torch_version": str(torch.__version__),
            **training_state}


def save_checkpoint(path, checkpoint):
    """torch.save to a temporary file in the same folder, then rename: the
    checkpoint under `path` is always either the old one or the new one."""
    with atomic_path(path, size=_tensor_bytes(checkpoint)) as tmp, open(tmp, "wb") as f:
        torch.save(checkpoint, f)
        f.flush()
        os.fsync(f.fileno())


def _tensor_bytes(value):
    """The bytes of the tensors in a checkpoint (nested dicts and lists): about its size on disk."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        value = list(value.values())
    return sum(_tensor_bytes(v) for v in value) if isinstance(value, (list, tuple)) else 0


def epoch_files(epoch, epochs, improved, checkpoint_every):
    """The checkpoints an epoch writes, under the lab's names: best_model.pth if it improved,
    checkpoint_epoch_N.pth every `checkpoint_every` epochs, final_model.pth after the last,
    and always last_model.pth (where --resume starts)."""
    names = ["best_model.pth"] if improved else []
    names += [f"checkpoint_epoch_{epoch}.pth"] if epoch % checkpoint_every == 0 else []
    names += ["final_model.pth"] if epoch == epochs else []
    return names + ["last_model.pth"]


def save_epoch(save_dir, checkpoint, epoch, epochs, improved, checkpoint_every):
    """Write an epoch's checkpoints (epoch_files), one after the other: whichever a kill or a full
    disk interrupts, the files already written stay whole, and --resume writes the others
    (runs.begin)."""
    for name in epoch_files(epoch, epochs, improved, checkpoint_every):
        save_checkpoint(os.path.join(save_dir, name), checkpoint)


def add_checkpoint_flag(parser):
    """--checkpoint, shared by inference.py and evaluate.py (find_checkpoint resolves it)."""
    parser.add_argument("--checkpoint", default=None,
                        help="model written by train.py (default: checkpoints/best_model.pth in the current "
                             "folder, else in this project's folder)")


def load_checkpoint(path, flag="--checkpoint"):
    """Load a checkpoint written by train.py, with one clear error if it is not one.

    `flag` is the command-line flag the path came from (train.py: --resume),
    so that the error names the right one. weights_only=True: loading a .pth
    from elsewhere can never run code.
    """
    if os.path.isdir(path):
        example = "last_model.pth" if flag == "--resume" else "best_model.pth"
        raise CheckpointError(f"{os.path.abspath(path)} is a folder: pass the checkpoint file in it, "
                              f"e.g. {flag} {pasteable(os.path.join(path, example))}")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {os.path.abspath(path)} does not exist: train a model first "
                              f"with `{runnable()} {pasteable(os.path.join(PROJECT_DIR, 'train.py'))}`, "
                              f"or give {flag} the path of an existing one")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (damaged, truncated or not a .pth file)") from err
    if not isinstance(state, dict) or ("model" not in state and "model_config" not in state):
        raise CheckpointError(f"{path} is not a checkpoint written by this project's train.py")
    if "format" in state and state["format"] != _CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {state['format']}, this version reads "
                              f"format {_CHECKPOINT_FORMAT}: retrain it with this train.py")
    missing = [field for field in REQUIRED_FIELDS if field not in state]
    if missing:  # checked once here: everything after reads these fields as they are
        raise CheckpointError(f"{path} has no {' and no '.join(missing)} field (written by torch "
                              f"{state.get('torch_version', 'of an unknown version')} in checkpoint format "
                              f"{state.get('format', 'unknown')}; this version reads format {_CHECKPOINT_FORMAT}, "
                              f"with {', '.join(REQUIRED_FIELDS)}): retrain it with this train.py")
    return state


def find_checkpoint(path=None, quiet=False):
    """The checkpoint to separate with: `path` if given, else _DEFAULT_CHECKPOINT in the current
    folder, else in this project's folder (train.py run from there, inference.py from elsewhere)."""
    if path is not None:
        return path
    places = list(dict.fromkeys([os.getcwd(), PROJECT_DIR]))  # one place when run from the project
    for folder in places:
        found = os.path.join(folder, _DEFAULT_CHECKPOINT)
        if os.path.isfile(found):
            if folder != os.getcwd() and not quiet:
                print(f"Using {found}")
            return found
    raise CheckpointError(f"no trained model: {_DEFAULT_CHECKPOINT} is not in {' nor in '.join(places)}; train one "
                          f"with `{runnable()} {pasteable(os.path.join(PROJECT_DIR, 'train.py'))}`, or give "
                          "--checkpoint the path of one")


# Model settings that were measured, lost and removed: the last commit whose code reads such a checkpoint.
_REMOVED_SETTINGS = {("input_compression", "log"): "b6b7f75"}


def model_config_of(state, path):
    """The UNetConfig of a loaded checkpoint, or one CheckpointError for settings this version no longer has."""
    config = dict(state["model_config"])
    for (key, value), commit in _REMOVED_SETTINGS.items():
        if config.get(key) == value:
            raise CheckpointError(f"{path} was trained with {key}={value!r}, an option measured, lost and removed "
                                  f"(docs/training.md): the code of commit {commit} reads it")
        config.pop(key, None)  # the setting's default value: the model of this version
    try:
        return UNetConfig(**config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds model settings this version cannot build ({err}): it was written by "
                              "another version of this project") from err


def load_model(path, device=None):
    """(model in eval mode on `device`, SignalConfig) from a train.py checkpoint, ready to separate: the one
    way inference.py, evaluate.py and the benchmarks load a model.

    The model also keeps what a figure's title says of it: `model.label`,
    e.g. "best_model.pth (epoch 20)", so that the file is read once.
    """
    state = load_checkpoint(path)
    config = model_config_of(state, path)
    try:
        model = UNet(config)
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"the checkpoint's weights do not fit its model settings "
                              f"{state['model_config']}: the file was damaged or edited") from err
    device = device or torch.device("cpu")
    model = model.eval().to(device)
    if memory_plan(device).channels_last:  # as in training: faster convolutions (benchmarks/README.md)
        model = model.to(memory_format=torch.channels_last)
    model.label = f"{os.path.basename(path)} (epoch {state['epoch']})"
    return model, SignalConfig(**state["signal"])
