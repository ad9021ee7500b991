"""A run's life as hypothesis drives it: new runs, resumes, Ctrl-C at any step, a second process, the
data changed, the folder renamed, in any order (hypothesis.stateful).

A model of what the save folder should hold (the flags of its run, the epochs
done, the run's id) is kept beside it, and after every step:

- every checkpoint in the folder belongs to the folder's one run (run.json's id);
- no epoch done is ever lost: the newest checkpoint holds every epoch done,
  and its history counts each one once, in order;
- nothing is half-written (no .tmp-* file), and every checkpoint loads;
- a refusal (another run, a locked folder) changes no file of the folder.

CI runs a fixed, bounded set of examples (derandomized); for a longer hunt:
HYPOTHESIS_EXAMPLES=50 pytest tests/test_run_life.py
"""

import contextlib
import glob
import hashlib
import io
import os
import shutil
import signal
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import runs
import songs
import train
from checkpoints import load_checkpoint

pytestmark = pytest.mark.usefixtures("quick_figures")  # no test here looks at the figures

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "3"))
TINY = ["--channels", "4", "8", "--batch-size", "4", "--samples-per-track", "2", "--quiet", "--figure-every", "100",
        "--cpu"]  # 2 patches a song, 4 a batch


def files_of(folder):
    return {os.path.relpath(os.path.join(parent, name), folder):
            hashlib.sha1(open(os.path.join(parent, name), "rb").read()).hexdigest()
            for parent, _, names in os.walk(folder) for name in names}


class RunLife(RuleBasedStateMachine):
    toy_root = None  # the session's tiny toy set (set by the test below)

    @initialize()
    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="run-life-")
        self.root = os.path.join(self.tmp, "musdb")
        shutil.copytree(self.toy_root, self.root)
        self.folder = os.path.join(self.tmp, "ckpt")
        self.run = None  # the folder's run as the model has it: {"seed", "epochs"} typed last
        self.done, self.run_id, self.data, self.trained_on = 0, None, 0, 0

    def teardown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def train(self, *flags, interrupt_at=None):
        """train.main with the tiny flags; (exit code, stdout, stderr). `interrupt_at`: Ctrl-C on that step."""
        out, err, steps = io.StringIO(), io.StringIO(), []
        real_loss = train.L1Loss

        class CtrlC(real_loss):
            def forward(self, mask, mix_mag, vocals_mag):
                if mask.requires_grad:
                    steps.append(1)
                    if len(steps) == interrupt_at:
                        signal.raise_signal(signal.SIGINT)  # acted on once the step is done
                return super().forward(mask, mix_mag, vocals_mag)

        train.L1Loss = CtrlC
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                train.main([*TINY, "--root", self.root, "--cache-dir", os.path.join(self.tmp, "cache"),
                            "--save-dir", self.folder, *flags])
            code = 0
        except SystemExit as stop:
            code = stop.code
        finally:
            train.L1Loss = real_loss
        assert "Traceback" not in err.getvalue(), err.getvalue()
        return code, out.getvalue(), err.getvalue()

    def expect_data_line(self, out):
        if self.trained_on != self.data:
            assert "The data changed since this run last trained" in out
        self.trained_on = self.data

    @rule(seed=st.sampled_from([1, 2]), epochs=st.integers(1, 2))
    def new_run(self, seed, epochs):
        before = files_of(self.folder) if os.path.isdir(self.folder) else {}
        code, out, _ = self.train("--seed", str(seed), "--epochs", str(epochs))
        if self.done and self.run != {"seed": seed, "epochs": epochs}:  # another run: refused, nothing touched
            assert code and "holds another run" in str(code) and "--resume" in str(code)
            assert files_of(self.folder) == before
            return
        assert code == 0, code
        if self.done:  # the same command again: its own run goes on
            self.expect_data_line(out)
        else:
            self.run_id, self.trained_on = None, self.data
        self.run, self.done = {"seed": seed, "epochs": epochs}, max(self.done, epochs)

    @rule(more=st.integers(1, 2), interrupt_at=st.sampled_from([None, 1, 2, 3]))
    def resume(self, more, interrupt_at):
        target = self.done + more
        code, out, _ = self.train("--resume", "--epochs", str(target), interrupt_at=interrupt_at)
        if not self.done:
            assert code and "found no checkpoint" in str(code)
            return
        self.expect_data_line(out)
        steps = -(-2 * len(songs.split_data(self.root, n_songs=None, quiet=True).train) // 4)  # per epoch
        if interrupt_at is not None and interrupt_at <= more * steps:
            assert code == 130
            self.done += (interrupt_at - 1) // steps  # the epochs finished before the Ctrl-C
        else:
            assert code == 0, code
            self.done = target
        self.run = dict(self.run, epochs=target)

    @precondition(lambda self: self.done)
    @rule()
    def second_process(self):
        before = files_of(self.folder)
        with runs.FolderLock(self.folder):  # held as another train.py would
            code, _, _ = self.train("--resume", "--epochs", str(self.done + 1))
        assert code and "is training into" in str(code)
        assert files_of(self.folder) == before

    @rule()
    def change_data(self):
        """A training song deleted, or put back."""
        song = sorted(os.listdir(os.path.join(self.root, "train")))[-1]
        kept = os.path.join(self.tmp, "kept song")
        if os.path.exists(kept):
            os.rename(kept, os.path.join(self.root, "train", os.path.basename(os.readlink(kept + ".name"))))
            os.unlink(kept + ".name")
        else:
            os.symlink(song, kept + ".name")
            os.rename(os.path.join(self.root, "train", song), kept)
        self.data += 1

    @precondition(lambda self: os.path.isdir(self.folder))
    @rule()
    def rename_folder(self):
        renamed = self.folder + "-renamed"
        os.rename(self.folder, renamed)
        self.folder = renamed

    @invariant()
    def one_run_and_nothing_lost(self):
        if not os.path.isdir(self.folder):
            return
        assert not glob.glob(os.path.join(self.folder, ".tmp-*"))
        states = {path: load_checkpoint(path) for path in glob.glob(os.path.join(self.folder, "*.pth"))}
        if not states:
            assert self.done == 0
            return
        record = runs.read_record(self.folder)
        assert {state["run_id"] for state in states.values()} == {record["id"]}
        if self.run_id is not None:
            assert record["id"] == self.run_id  # the same run, whatever happened to it
        self.run_id = record["id"]
        newest = max(states.values(), key=lambda state: state["epoch"])
        assert newest["epoch"] == self.done
        assert [row["epoch"] for row in newest["history"]] == list(range(1, self.done + 1))
        assert glob.glob(os.path.join(self.folder, "logs", "*"))  # the log inside the folder, whatever its name


@pytest.mark.slow
def test_a_runs_life_in_any_order_keeps_one_run_and_loses_nothing(toy_root):
    RunLife.toy_root = toy_root
    RunLife.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=5, deadline=None,
                                         derandomize=True, suppress_health_check=list(HealthCheck))
    RunLife.TestCase().runTest()
