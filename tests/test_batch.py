"""batch.py through inference.main: folders of songs, what a batch reads, reruns, a second checkpoint."""

import json
import os

import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inference
from conftest import noisy_song


def folder_of_songs(folder, names):
    folder.mkdir()
    for name in names:
        sf.write(folder / name, noisy_song(1.0, 8000, 2), 8000)
    return folder


def test_a_broken_link_among_the_songs_is_reported_and_the_others_separated(tiny_checkpoint, tmp_path, capsys):
    songs = folder_of_songs(tmp_path / "songs", ["a.wav", "c.wav"])
    os.symlink(tmp_path / "gone.wav", songs / "b.wav")  # points nowhere
    with pytest.raises(SystemExit) as stop:
        inference.main([str(songs), "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out"), "--no-plot"])
    assert stop.value.code == "error: 1 of the songs could not be separated (see above)"
    out, err = capsys.readouterr()
    assert f"error: cannot read {songs / 'b.wav'} (No such file or directory); skipped it" in err
    assert f"2 songs separated, 0 already done, 1 failed ({songs / 'b.wav'})" in out
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "c"]


def test_a_batch_run_inside_its_music_folder_never_separates_its_own_outputs(tiny_checkpoint, tmp_path, monkeypatch,
                                                                            capsys):
    music = folder_of_songs(tmp_path / "music", ["a.wav", "b.wav"])
    monkeypatch.chdir(music)
    flags = [".", "-r", "--checkpoint", tiny_checkpoint, "--no-plot"]  # the default --out-dir, outputs, is inside
    inference.main(flags)
    assert "2 songs separated, 0 already done" in capsys.readouterr().out
    inference.main(flags)  # outputs/ is left out
    assert "0 songs separated, 2 already done" in capsys.readouterr().out
    os.rename(music / "outputs", music / "older outputs")  # outputs that are not the --out-dir: their records tell
    inference.main(flags)
    out = capsys.readouterr().out
    assert "2 songs separated, 0 already done" in out and "older outputs" not in out
    assert sorted(os.listdir(music)) == ["a.wav", "b.wav", "older outputs", "outputs"]


def a_second_checkpoint(tiny_checkpoint, folder):
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["model"]["head.bias"] += 1.0  # another model
    path = folder / "other.pth"
    torch.save(state, path)
    return str(path)


def test_a_second_checkpoint_is_refused_before_any_song_unless_forced(tiny_checkpoint, tmp_path, capsys):
    songs = folder_of_songs(tmp_path / "songs", ["a.wav", "b.wav"])
    out = tmp_path / "out"
    inference.main([str(songs / "a.wav"), "--checkpoint", tiny_checkpoint, "--out-dir", str(out), "--quiet"])
    before = (out / "a" / "vocals.wav").read_bytes()
    other = a_second_checkpoint(tiny_checkpoint, tmp_path)
    with pytest.raises(SystemExit) as stop:
        inference.main([str(songs), "--checkpoint", other, "--out-dir", str(out), "--quiet"])
    assert stop.value.code == (f"error: {out / 'a'} holds what {tiny_checkpoint} separated: --force replaces it with "
                               "this checkpoint's outputs, or give another --out-dir to keep both")
    assert os.listdir(out) == ["a"] and (out / "a" / "vocals.wav").read_bytes() == before  # b was not separated first
    inference.main([str(songs), "--checkpoint", other, "--out-dir", str(out), "--quiet", "--force"])
    assert json.loads((out / "a" / "separation.json").read_text())["checkpoint"]["path"] == other
    assert (out / "a" / "vocals.wav").read_bytes() != before


def test_a_checkpoint_retrained_in_place_just_redoes_its_outputs(tiny_checkpoint, tmp_path, capsys):
    folder_of_songs(tmp_path / "songs", ["a.wav"])
    checkpoint = tmp_path / "best_model.pth"
    checkpoint.write_bytes(open(tiny_checkpoint, "rb").read())
    flags = [str(tmp_path / "songs" / "a.wav"), "--checkpoint", str(checkpoint), "--out-dir", str(tmp_path / "out")]
    inference.main(flags)
    os.replace(a_second_checkpoint(str(checkpoint), tmp_path), checkpoint)  # trained again, same path
    capsys.readouterr()
    inference.main(flags)
    assert "a.wav: wrote" in capsys.readouterr().out


def test_an_earlier_output_separated_again_into_the_same_out_dir_is_refused_not_overwritten(tiny_checkpoint, tmp_path):
    folder_of_songs(tmp_path / "songs", ["song.wav"])
    out = tmp_path / "OUT"
    flags = ["--checkpoint", tiny_checkpoint, "--out-dir", str(out), "--no-plot", "--quiet"]
    inference.main([str(tmp_path / "songs" / "song.wav"), *flags])
    inference.main([str(out / "song" / "accompaniment.wav"), *flags])  # the karaoke track: into OUT/accompaniment/
    karaoke = out / "accompaniment" / "accompaniment.wav"
    before = karaoke.read_bytes()
    with pytest.raises(SystemExit) as stop:  # what is left in it, taken out again: its outputs would replace it
        inference.main([str(karaoke), *flags])
    assert stop.value.code == f"error: {karaoke} is an input of this command, so it is not written over: give " \
                              "another --out-dir"
    assert karaoke.read_bytes() == before


@pytest.mark.parametrize("link", [os.link, os.symlink])
def test_an_output_that_is_an_input_under_another_name_is_refused_before_any_song(tiny_checkpoint, tmp_path, link):
    folder_of_songs(tmp_path / "songs", ["song.wav", "other.wav"])
    out = tmp_path / "out"
    flags = ["--checkpoint", tiny_checkpoint, "--out-dir", str(out), "--no-plot", "--quiet"]
    inference.main([str(tmp_path / "songs" / "song.wav"), *flags])
    vocals = out / "song" / "vocals.wav"
    before = vocals.read_bytes()
    (tmp_path / "again").mkdir()
    link(vocals, tmp_path / "again" / "song.wav")  # the same file: its outputs go to out/song/ too
    with pytest.raises(SystemExit) as stop:  # the other song comes first, and is not separated either
        inference.main([str(tmp_path / "songs" / "other.wav"), str(tmp_path / "again" / "song.wav"), *flags])
    assert stop.value.code == f"error: {vocals} is the same file as {tmp_path / 'again' / 'song.wav'}, an input " \
                              "of this command, so it is not written over: give another --out-dir"
    assert vocals.read_bytes() == before and sorted(os.listdir(out)) == ["song"]


def test_an_output_of_one_song_that_is_another_song_of_the_batch_is_refused(tiny_checkpoint, tmp_path):
    folder_of_songs(tmp_path / "songs", ["a.wav"])
    out = tmp_path / "out"
    flags = ["--checkpoint", tiny_checkpoint, "--out-dir", str(out), "--no-plot", "--quiet"]
    inference.main([str(tmp_path / "songs" / "a.wav"), *flags])
    os.utime(tmp_path / "songs" / "a.wav")  # changed since: a.wav is separated again, over out/a/vocals.wav
    with pytest.raises(SystemExit) as stop:  # ... which the same batch reads as a song
        inference.main([str(tmp_path / "songs" / "a.wav"), str(out / "a" / "vocals.wav"), *flags])
    assert stop.value.code.startswith(f"error: {out / 'a' / 'vocals.wav'} is an input of this command")


def broken(kind, path, tmp_path):
    """Put a broken entry of `kind` at `path`: what a real music folder can hold."""
    if kind == "link to nothing":
        os.symlink(tmp_path / "nowhere.wav", path)
    elif kind == "not audio":
        path.write_text("not audio\n" * 20)
    elif kind == "empty file":
        path.write_bytes(b"")
    elif kind == "cut short":
        sf.write(path, noisy_song(1.0, 8000, 2), 8000, subtype="PCM_16", format="FLAC")
        path.write_bytes(path.read_bytes()[:200])


KINDS = ["link to nothing", "not audio", "empty file", "cut short"]


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "8")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(good=st.integers(1, 3), bad=st.lists(st.sampled_from(KINDS), max_size=3), nested=st.booleans())
def test_a_folder_of_good_and_broken_files_separates_every_good_song_and_changes_no_input(
        tiny_checkpoint, tmp_path_factory, good, bad, nested):
    tmp_path = tmp_path_factory.mktemp("batch")
    music = tmp_path / "music"
    (music / "disc").mkdir(parents=True)
    for i in range(good):
        sf.write((music / "disc" if nested and i else music) / f"good {i}.wav", noisy_song(0.5, 8000, 1), 8000)
    for i, kind in enumerate(bad):
        broken(kind, music / f"bad {i}.flac", tmp_path)
    def inputs():  # every entry but the outputs, with its bytes (None: a folder, or a link to nothing)
        return {p: p.read_bytes() if p.is_file() else None for p in music.rglob("*") if "outputs" not in p.parts}

    before = inputs()
    flags = [str(music), "-r", "--checkpoint", tiny_checkpoint, "--out-dir", str(music / "outputs"), "--no-plot",
             "--quiet"]
    for _ in range(2):  # the second run: the outputs lie inside the folder, and are never read as songs
        try:
            inference.main(flags)
            code = 0
        except SystemExit as stop:  # the only way out: a one-line error, no traceback
            code = stop.code
        assert code == 0 or (isinstance(code, str) and code.startswith("error: ") and "\n" not in code)
        assert (code != 0) == bool(bad)  # non-zero exactly when a file could not be separated
    written = sorted(str(p.relative_to(music / "outputs").parent) for p in (music / "outputs").rglob("vocals.wav"))
    assert written == sorted([f"good {i}" if not nested or i == 0 else f"disc/good {i}" for i in range(good)])
    assert inputs() == before


def test_a_folder_is_separated_song_by_song_and_same_names_never_collide(tiny_checkpoint, tmp_path, capsys):
    songs = tmp_path / "songs"
    (songs / "live").mkdir(parents=True)
    for path in (songs / "a.wav", songs / "a.flac", songs / "live" / "a.wav", songs / "b.ogg"):
        sf.write(path, noisy_song(1.0, 16000, 2), 16000)
    (songs / "notes.txt").write_text("not audio")
    flags = ["--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out"), "--no-plot"]
    inference.main([str(songs), *flags])
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "a (wav)", "b"]  # a.flac first, then a.wav
    out = capsys.readouterr().out
    assert "shares its name with another input" in out
    assert "left out the 1 audio file of its subfolders; add --recursive (-r)" in out
    inference.main([str(songs), "--recursive", "--quiet", *flags])  # again: the same names, plus live/a.wav
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "a (wav)", "b", "live"]  # the input's subfolder
    assert sorted(os.listdir(tmp_path / "out" / "live" / "a")) == ["accompaniment.wav", "separation.json",
                                                                  "vocals.wav"]


def test_a_folder_of_discs_keeps_its_subfolders_and_a_musdb_song_folder_gives_its_mixture(tiny_checkpoint, tmp_path):
    music = tmp_path / "music"
    for disc in ("disc1", "disc2", "disc3"):
        (music / disc).mkdir(parents=True)
        sf.write(music / disc / "01.wav", noisy_song(1.0, 16000, 2), 16000)
    song = music / "musdb" / "Some Song"  # MUSDB18-HQ: the mix beside its stems
    song.mkdir(parents=True)
    for stem in ("mixture", "vocals", "drums", "bass", "other"):
        sf.write(song / f"{stem}.wav", noisy_song(1.0, 16000, 2), 16000)
    inference.main([str(music), "-r", "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out"),
                    "--no-plot", "--quiet"])
    written = sorted(os.path.relpath(folder, tmp_path / "out") for folder, _, files in os.walk(tmp_path / "out")
                     if "vocals.wav" in files)
    assert written == ["disc1/01", "disc2/01", "disc3/01", "musdb/Some Song"]


def test_a_batch_skips_an_unreadable_file_goes_on_and_says_which_failed(tiny_checkpoint, tmp_path, capsys):
    songs = tmp_path / "songs"
    songs.mkdir()
    for name in ("a.wav", "c.wav"):
        sf.write(songs / name, noisy_song(1.0, 16000, 2), 16000)
    (songs / "b.wav").write_bytes(b"RIFF, but not audio")
    with pytest.raises(SystemExit) as stop:
        inference.main([str(songs), "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out"), "--no-plot"])
    assert stop.value.code == "error: 1 of the songs could not be separated (see above)"
    out, err = capsys.readouterr()
    assert f"{songs / 'b.wav'}" in err and "skipped it" in err
    assert f"2 songs separated, 0 already done, 1 failed ({songs / 'b.wav'})" in out
    assert "[3/3]" in out and "left)" in out  # progress over the batch, with the time it still needs
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "c"]


def test_a_rerun_skips_the_songs_already_separated_so_and_redoes_the_others(tiny_checkpoint, tmp_path, capsys):
    songs = tmp_path / "songs"
    songs.mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(songs / name, noisy_song(1.0, 16000, 2), 16000)
    flags = [str(songs), "--checkpoint", tiny_checkpoint, "--out-dir", str(tmp_path / "out"), "--no-plot"]
    inference.main(flags)
    record = json.loads((tmp_path / "out" / "a" / "separation.json").read_text())
    assert record["checkpoint"]["path"] == os.path.abspath(tiny_checkpoint) and record["reconstruction"] == "full"
    capsys.readouterr()

    os.remove(tmp_path / "out" / "b" / "vocals.wav")  # b is incomplete now
    inference.main(flags)
    out = capsys.readouterr().out
    assert "a.wav: already separated" in out and "b.wav: wrote" in out
    assert "1 songs separated, 1 already done, 0 failed" in out
    inference.main(flags + ["--reconstruction", "lab"])  # other settings: both again
    assert "2 songs separated, 0 already done" in capsys.readouterr().out
    inference.main(flags + ["--reconstruction", "lab", "--force"])
    assert "2 songs separated, 0 already done" in capsys.readouterr().out


def test_a_missing_file_is_reported_before_any_song_is_separated(tiny_checkpoint, tmp_path):
    sf.write(tmp_path / "good.wav", noisy_song(1.0, 16000, 2), 16000)
    with pytest.raises(SystemExit) as exit_info:
        inference.main([str(tmp_path / "good.wav"), str(tmp_path / "typo.wav"), "--checkpoint", tiny_checkpoint,
                        "--out-dir", str(tmp_path / "out"), "--no-plot", "--quiet"])
    assert str(exit_info.value.code) == f"error: audio file not found: {tmp_path / 'typo.wav'}"
    assert not (tmp_path / "out").exists()  # good.wav, first in line, was not separated either
