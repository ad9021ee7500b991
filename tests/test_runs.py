"""A run knows itself (runs.py): its record, its lock, resume of that run only, the data it trained on,
and writes that may fail while it trains (reports warn, a checkpoint that cannot be written ends it)."""

import errno
import glob
import hashlib
import os
import shutil

import pytest

import reports
import runs
import train
from checkpoints import load_checkpoint

pytestmark = pytest.mark.usefixtures("quick_figures")  # no test here looks at the figures

TINY = ["--channels", "4", "8", "--batch-size", "4", "--samples-per-track", "2", "--quiet", "--figure-every", "100",
        "--cpu"]  # figures cost most of a tiny run: test_train.py draws them


def flags(toy_root, tmp_path, *extra, save_dir="ckpt"):
    return [*TINY, "--root", str(toy_root), "--cache-dir", str(tmp_path / "cache"),
            "--save-dir", str(tmp_path / save_dir), *extra]


def stops(argv):
    """train.main(argv)'s exit message; it must stop."""
    with pytest.raises(SystemExit) as stop:
        train.main(argv)
    return str(stop.value.code)


def checksums(folder):
    return {os.path.relpath(os.path.join(parent, name), folder):
            hashlib.sha1(open(os.path.join(parent, name), "rb").read()).hexdigest()
            for parent, _, names in os.walk(folder) for name in names}


def run_ids(save_dir):
    return {load_checkpoint(path).get("run_id") for path in glob.glob(str(save_dir / "*.pth"))}


def test_every_checkpoint_carries_the_run_id_of_the_folders_record(toy_root, tmp_path):
    train.main(flags(toy_root, tmp_path, "--epochs", "2", "--seed", "1"))
    record = runs.read_record(str(tmp_path / "ckpt"))
    assert run_ids(tmp_path / "ckpt") == {record["id"]}
    assert record["flags"]["seed"] == 1 and "save_dir" not in record["flags"]
    assert record["data"]["root"] == os.path.realpath(toy_root) and record["data"]["valid"]
    assert load_checkpoint(str(tmp_path / "ckpt" / "last_model.pth"))["run_dir"].startswith("logs" + os.sep)


def test_a_new_run_into_a_folder_holding_another_run_is_refused_and_changes_nothing(toy_root, tmp_path):
    train.main(flags(toy_root, tmp_path, "--epochs", "2", "--seed", "1"))
    before = checksums(tmp_path / "ckpt")
    message = stops(flags(toy_root, tmp_path, "--epochs", "1", "--seed", "2"))
    assert "holds another run" in message and "--seed 1 (now --seed 2)" in message
    assert "--resume --save-dir" in message and "another --save-dir" in message and "\n" not in message
    assert checksums(tmp_path / "ckpt") == before


def test_the_same_command_again_continues_its_own_run_and_a_finished_one_has_nothing_to_do(toy_root, tmp_path,
                                                                                            capsys):
    argv = flags(toy_root, tmp_path, "--epochs", "2")
    train.main(argv)
    before = checksums(tmp_path / "ckpt")
    capsys.readouterr()
    train.main(argv)  # the quickstart, done twice
    assert "already has 2 epochs: nothing to do" in capsys.readouterr().out
    assert {k: v for k, v in checksums(tmp_path / "ckpt").items() if k != runs.RECORD} == \
           {k: v for k, v in before.items() if k != runs.RECORD}


def test_resume_continues_the_folders_run_from_its_newest_checkpoint(toy_root, tmp_path):
    train.main(flags(toy_root, tmp_path, "--epochs", "2", "--checkpoint-every", "1"))
    train.main(flags(toy_root, tmp_path, "--epochs", "3", "--resume"))
    final = load_checkpoint(str(tmp_path / "ckpt" / "final_model.pth"))
    assert final["epoch"] == 3 and [row["epoch"] for row in final["history"]] == [1, 2, 3]
    assert len(run_ids(tmp_path / "ckpt")) == 1


def test_resume_in_a_folder_without_a_record_takes_last_model_not_the_highest_epoch(toy_root, tmp_path):
    """A folder written before run records: an older run (seed 1) left checkpoint_epoch_2.pth, a newer one
    (seed 2, one epoch) last_model.pth; --resume continues the newer one."""
    save_dir = tmp_path / "ckpt"
    train.main(flags(toy_root, tmp_path, "--epochs", "2", "--seed", "1", "--checkpoint-every", "1"))
    train.main(flags(toy_root, tmp_path, "--epochs", "1", "--seed", "2", save_dir="newer"))
    shutil.copy(tmp_path / "newer" / "last_model.pth", save_dir / "last_model.pth")
    os.unlink(save_dir / runs.RECORD)
    train.main(flags(toy_root, tmp_path, "--epochs", "2", "--resume"))
    final = load_checkpoint(str(save_dir / "final_model.pth"))
    assert final["args"]["seed"] == 2 and [row["epoch"] for row in final["history"]] == [1, 2]


def test_a_second_process_training_into_the_same_folder_is_refused(toy_root, tmp_path):
    os.makedirs(tmp_path / "ckpt")
    with runs.FolderLock(str(tmp_path / "ckpt")):  # another open file: flock refuses it as another process's
        message = stops(flags(toy_root, tmp_path, "--epochs", "1"))
    assert f"another train.py (process {os.getpid()}) is training into" in message
    assert not glob.glob(str(tmp_path / "ckpt" / "*.pth"))
    train.main(flags(toy_root, tmp_path, "--epochs", "1"))  # released: the system frees it with the process too


def test_a_resumed_run_whose_data_changed_says_what_and_measures_its_baselines_again(toy_root, tmp_path, capsys):
    root = tmp_path / "musdb"
    shutil.copytree(toy_root, root)
    train.main(flags(root, tmp_path, "--epochs", "1"))
    valid = runs.read_record(str(tmp_path / "ckpt"))["data"]["valid"]
    shutil.rmtree(root / "train" / sorted(valid)[0])  # the held-out song gone: another song validates now
    capsys.readouterr()
    train.main(flags(root, tmp_path, "--epochs", "2", "--resume"))
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("The data changed")]
    assert "validation songs" in line and "gone" in line and sorted(valid)[0] in line
    assert "Validation loss of the best constant mask" in out  # measured again, on the songs of now
    history = load_checkpoint(str(tmp_path / "ckpt" / "final_model.pth"))["history"]
    assert history[0]["constant_mask_loss"] != history[1]["constant_mask_loss"]


def test_a_renamed_save_folder_resumes_with_its_log_inside_it(toy_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [*TINY, "--root", str(toy_root), "--cache-dir", "cache", "--epochs", "1"]
    train.main([*argv, "--save-dir", "first"])
    os.rename("first", "second")
    train.main([*argv[:-1], "2", "--save-dir", "second", "--resume"])
    assert not os.path.exists("first")
    (run,) = glob.glob("second/logs/*")
    assert len(glob.glob(os.path.join(run, "valid", "events.*"))) == 2  # the resumed epoch, in the same run


def test_resume_says_which_stored_flags_it_keeps_and_each_can_be_set_back(toy_root, tmp_path, capsys):
    train.main(flags(toy_root, tmp_path, "--epochs", "1", "--max-batches", "1"))  # a smoke test
    capsys.readouterr()
    train.main(flags(toy_root, tmp_path, "--epochs", "2", "--resume"))
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Resuming")]
    assert "; it keeps " in line and "--max-batches 1" in line
    assert load_checkpoint(str(tmp_path / "ckpt" / "last_model.pth"))["step"] == 2  # one batch an epoch
    train.main(flags(toy_root, tmp_path, "--epochs", "3", "--resume", "--max-batches", "all"))
    assert load_checkpoint(str(tmp_path / "ckpt" / "last_model.pth"))["step"] == 2 + 2  # 3 songs x 2 patches


def test_resume_of_a_checkpoint_path_goes_on_in_its_own_folder(toy_root, tmp_path):
    train.main(flags(toy_root, tmp_path, "--epochs", "1", save_dir="elsewhere"))
    train.main([*TINY, "--root", str(toy_root), "--cache-dir", str(tmp_path / "cache"), "--epochs", "2",
                "--resume", str(tmp_path / "elsewhere" / "last_model.pth")])
    assert load_checkpoint(str(tmp_path / "elsewhere" / "final_model.pth"))["epoch"] == 2


def test_a_checkpoint_of_another_run_cannot_continue_in_this_runs_folder(toy_root, tmp_path):
    train.main(flags(toy_root, tmp_path, "--epochs", "1", "--seed", "1"))
    train.main(flags(toy_root, tmp_path, "--epochs", "1", "--seed", "2", save_dir="other"))
    message = stops(flags(toy_root, tmp_path, "--epochs", "2", "--resume", str(tmp_path / "other" / "last_model.pth")))
    assert "belongs to another run" in message


def test_a_deleted_log_folder_is_one_warning_made_again_and_training_goes_on(toy_root, tmp_path, monkeypatch,
                                                                             capsys):
    logged = reports.log_epoch

    def then_delete(log, row, *args):
        logged(log, row, *args)
        if row["epoch"] == 1:  # cleaning old runs while this one trains
            shutil.rmtree(tmp_path / "ckpt" / "logs")

    monkeypatch.setattr(reports, "log_epoch", then_delete)
    train.main(flags(toy_root, tmp_path, "--epochs", "3"))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception in thread" not in err
    assert err.count("warning: could not write the TensorBoard log") <= 1
    assert glob.glob(str(tmp_path / "ckpt" / "logs" / "*" / "valid" / "events.*"))  # made again
    assert load_checkpoint(str(tmp_path / "ckpt" / "final_model.pth"))["epoch"] == 3


def test_a_save_folder_that_turns_read_only_ends_the_run_in_one_line_keeping_the_last_checkpoint(
        toy_root, tmp_path, monkeypatch):
    save_dir, replace = str(tmp_path / "ckpt"), os.replace

    def read_only_after_epoch_1(source, target):
        if os.path.dirname(os.path.abspath(target)) == save_dir and os.path.exists(os.path.join(save_dir,
                                                                                               "final_model.pth")):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), target)
        replace(source, target)

    train.main(flags(toy_root, tmp_path, "--epochs", "1"))
    monkeypatch.setattr(os, "replace", read_only_after_epoch_1)
    message = stops(flags(toy_root, tmp_path, "--epochs", "3", "--resume"))
    assert message.startswith("error: cannot write") and "Read-only file system" in message and "\n" not in message
    assert load_checkpoint(os.path.join(save_dir, "last_model.pth"))["epoch"] == 1
    assert not glob.glob(os.path.join(save_dir, ".tmp-*"))


def test_a_read_only_project_keeps_the_toy_set_and_caches_in_the_users_cache_folder(tmp_path, monkeypatch):
    import files

    project_data = os.path.join(files.PROJECT_DIR, "data")
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if os.path.abspath(path) in
                        (files.PROJECT_DIR, project_data) else writable(path, mode))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache home"))
    assert files.data_folder() == str(tmp_path / "cache home" / "unet-vocals")
    monkeypatch.setattr(os, "access", writable)
    assert files.data_folder() == project_data




def test_a_stop_between_the_last_epochs_checkpoints_is_completed_by_the_same_command(toy_root, tmp_path,
                                                                                     monkeypatch):
    """Found by the fault injection: a full disk after best_model.pth of the last epoch left final_model.pth
    unwritten and last_model.pth an epoch behind; the same command then resumed from best_model.pth, found
    nothing to do, and the run never got its final_model.pth. Now the resume writes what the epoch lacked."""
    argv = flags(toy_root, tmp_path, "--epochs", "2")
    real = train.checkpoints.save_checkpoint

    def full_disk_at_the_final_model(path, checkpoint):
        if os.path.basename(path) == "final_model.pth":
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(path, checkpoint)

    monkeypatch.setattr(train.checkpoints, "save_checkpoint", full_disk_at_the_final_model)
    assert "the disk is full" in stops(argv)
    monkeypatch.setattr(train.checkpoints, "save_checkpoint", real)
    save_dir = tmp_path / "ckpt"
    assert load_checkpoint(str(save_dir / "last_model.pth"))["epoch"] == 1
    train.main(argv)
    assert [load_checkpoint(str(save_dir / name))["epoch"] for name in ("final_model.pth", "last_model.pth")] == [2, 2]
    assert len((save_dir / "history.csv").read_text().splitlines()) == 3  # the header and two epochs
