"""workers.py: work spread over worker processes, whose death is named at once and whose errors come back."""

import os
import signal
import time

import pytest

import songs
from workers import WorkerDied, run_jobs


def die_on_two(job):
    if job == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
    return job * 10


def raise_on_two(job):
    if job == 2:
        raise songs.DataError("song 2 is bad")
    return job


def test_a_worker_that_dies_is_named_at_once_and_the_jobs_done_before_are_kept():
    done, start = [], time.time()
    with pytest.raises(WorkerDied) as died:
        for job, result in run_jobs(die_on_two, [1, 3, 2, 4, 5], workers=2):
            done.append((job, result))
    assert died.value.job == 2 and died.value.killed and died.value.exitcode == -signal.SIGKILL
    assert done and all(result == 10 * job != 20 for job, result in done) and time.time() - start < 60


def test_an_exception_in_a_worker_is_raised_here_with_its_message():
    with pytest.raises(songs.DataError, match="song 2 is bad"):
        list(run_jobs(raise_on_two, [1, 2, 3], workers=2))
    assert [result for _, result in run_jobs(raise_on_two, [1, 3], workers=1)] == [1, 3]
