"""The toy data set: a few generated songs in the MUSDB18-HQ layout, built once, the default data.

So that `python train.py` runs on a fresh machine, with no MUSDB18 on disk:
the songs come from toy_music.py's synthesiser (a singer over drums, bass and
other instruments in its register), written as MUSDB18-HQ folders, so the
very same code that reads MUSDB18-HQ reads them. toy_music is imported only
when the set is built: its import (scipy.signal) takes seconds, which a run
that finds the set already built does not pay.
"""

import json
import os
import shutil
import tempfile
import time

import numpy as np
import soundfile as sf

from audio import libsndfile_write_errors
from cli import UserError, progress_bar
from files import STEMS, data_folder, disk_full_error, make_readable

_DEFAULT_TOY_ROOT = os.path.join(data_folder(), "toy_musdb")


class ToySetError(UserError):
    """A toy set that cannot be written."""


# The toy set: 13 training songs (3 of them held out for validation) and 3
# test songs of 35 s, stereo 16-bit at 16 kHz: about 180 MB, built in seconds.
TOY_SETTINGS = {"version": 1, "n_train": 13, "n_test": 3, "seconds": 35.0,
                "sample_rate": 16000, "seed": 2017}


def build_toy_musdb(root, settings=TOY_SETTINGS, quiet=False):
    """Write the toy set in the MUSDB18-HQ layout: root/{train,test}/<song>/<stem>.wav.

    Stems are quantised to 16 bits first and the mixture is their integer
    sum, so mixture.wav is exactly vocals + drums + bass + other as read back.
    The set is written to a temporary folder and renamed at the end, so an
    interrupted build never leaves a half-made set that looks complete.
    """
    from toy_music import synth_song  # only when the set is built: its import (scipy.signal) takes seconds

    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".toy_musdb-", dir=parent)
    songs = [("train", i) for i in range(settings["n_train"])]
    songs += [("test", i) for i in range(settings["n_test"])]
    start = time.time()
    try:
        for subset, i in progress_bar(songs, quiet, desc="building toy set", unit="song"):
            seed = settings["seed"] * 1000 + (0 if subset == "train" else 500) + i
            stems = synth_song(seed, settings["seconds"], settings["sample_rate"])
            folder = os.path.join(tmp, subset, f"Toy Song {subset} {i + 1:02d}")
            os.makedirs(folder)
            ints = {name: np.round(stems[name] * 32767).astype(np.int32) for name in STEMS}
            ints["mixture"] = sum(ints[name] for name in STEMS)
            for name, x in ints.items():
                x = np.clip(x, -32768, 32767).astype(np.int16)
                path = os.path.join(folder, f"{name}.wav")
                with libsndfile_write_errors(path):
                    sf.write(path, x, settings["sample_rate"], subtype="PCM_16")
        with open(os.path.join(tmp, "toy.json"), "w") as f:
            json.dump(settings, f, indent=2)
        if os.path.exists(root):
            shutil.rmtree(root)
        make_readable(tmp)  # mkdtemp makes it private
        os.replace(tmp, root)
    except BaseException as err:
        size = len(songs) * (len(STEMS) + 1) * settings["seconds"] * settings["sample_rate"] * 2 * 2  # 16-bit stereo
        full = disk_full_error(err, root, size)  # before the half-built set's space is given back
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise full from err
        raise
    if not quiet:
        print(f"Built the toy data set in {time.time() - start:.1f} s: {root}")


def ensure_toy_musdb(root=None, quiet=False):
    """Build the toy set (default: _DEFAULT_TOY_ROOT) unless a complete one with the same settings is there;
    a ToySetError if it cannot be written."""
    root = root or _DEFAULT_TOY_ROOT
    marker = os.path.join(root, "toy.json")
    try:
        with open(marker) as f:
            if json.load(f) == TOY_SETTINGS:
                return root
    except (OSError, ValueError):
        pass
    try:
        build_toy_musdb(root, quiet=quiet)
    except OSError as err:  # a full disk is a DiskFullError already
        raise ToySetError(f"cannot write the toy data set to {root} ({err.strerror}): point --root (or MUSDB_PATH) at "
                        "MUSDB18, or set XDG_CACHE_HOME to a folder you can write") from err
    return root
