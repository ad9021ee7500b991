"""files.py: the overwrite rule, and what a record vouches for."""

import json

import pytest

def test_check_replaceable_lets_through_only_what_the_record_lists(tmp_path):
    from files import OverwriteError, check_replaceable

    check_replaceable(tmp_path / "new", ["vocals.wav", "separation.json"], "hint")  # nothing there yet
    (tmp_path / "vocals.wav").write_bytes(b"ours")
    (tmp_path / "notes.txt").write_text("the user's")
    (tmp_path / "separation.json").write_text(json.dumps({"files": ["vocals.wav"]}))
    check_replaceable(tmp_path, ["vocals.wav", "accompaniment.wav", "separation.json"], "hint")
    with pytest.raises(OverwriteError, match=r"notes.txt was not written by this project .*: hint$"):
        check_replaceable(tmp_path, ["vocals.wav", "notes.txt"], "hint")
    (tmp_path / "separation.json").write_text("not a record")  # then nothing here is known to be ours
    with pytest.raises(OverwriteError, match="vocals.wav"):
        check_replaceable(tmp_path, ["vocals.wav"], "hint")
