"""Work spread over worker processes that notices when one dies.

    for job, result in run_jobs(score_one, jobs, workers=2, initializer=load_model_once, initargs=(path,)):
        ...

The feature build (songs.py) and evaluate.py give their songs to worker
processes. A worker can die without a word: the out-of-memory killer sends it
SIGKILL, which no Python code sees. `multiprocessing.Pool` then quietly
starts a new worker and waits forever for the lost job's result, and
`concurrent.futures.ProcessPoolExecutor` fails every unfinished job at once
without saying which one the dead worker held. Here each worker has a pipe of
its own and is given one job at a time, so the main process always knows which
job each worker holds: it waits on the pipes and on the processes themselves
(`multiprocessing.connection.wait`), and a worker's death is `WorkerDied`
naming its job, within a moment of the death.

Workers are spawned (not forked: a forked copy of a process that runs torch
threads can deadlock), ignore Ctrl-C (the main process handles it, and
terminates them on the way out), and run `initializer(*initargs)` once.
"""

import contextlib
import multiprocessing
import multiprocessing.connection
import signal


class WorkerDied(Exception):
    """A worker process ended while it held `job` (killed, out of memory, crashed)."""

    def __init__(self, job, exitcode):
        super().__init__(f"a worker process died (exit code {exitcode}) while it held {job!r}")
        self.job, self.exitcode = job, exitcode

    @property
    def killed(self):
        """True if a signal ended it: SIGKILL is what the out-of-memory killer sends."""
        return self.exitcode is not None and self.exitcode < 0


def run_jobs(function, jobs, workers=1, initializer=None, initargs=()):
    """Yield (job, function(job)) for every job, `workers` processes at a time.

    With workers <= 1 the jobs run here, in order, with no process to start
    (and no initializer: this process is the caller's, who has what the jobs
    need). Otherwise they run in spawned processes and come back as they finish;
    `function` must then be a module-level function and the jobs picklable.
    An exception raised by `function` in a worker is raised again here; a
    worker that dies raises WorkerDied. Leaving the loop early (an exception,
    Ctrl-C, break) terminates the workers.
    """
    jobs = list(jobs)
    if workers <= 1:
        for job in jobs:
            yield job, function(job)
        return
    pool = []  # [process, its end of the pipe, the job it holds or None]
    try:
        _start(pool, min(workers, len(jobs)), function, initializer, initargs)
        waiting = list(reversed(jobs))
        while True:
            _hand_out(pool, waiting)
            busy = [worker for worker in pool if worker[2] is not None]
            if not busy:
                return
            ready = multiprocessing.connection.wait([w[1] for w in busy] + [w[0].sentinel for w in busy])
            for worker in busy:
                process, pipe, job = worker
                if pipe in ready or process.sentinel in ready:
                    answer = _receive(pipe)
                    if answer is None:  # no answer and the pipe closed: the worker is gone
                        process.join(1)
                        raise WorkerDied(job, process.exitcode)
                    worker[2] = None
                    ok, value = answer
                    if not ok:
                        raise value
                    yield job, value
    finally:
        for process, pipe, _ in pool:
            if process.is_alive():
                process.terminate()
            process.join()
            pipe.close()


def _start(pool, count, function, initializer, initargs):
    """Spawn `count` workers into `pool`, each with a pipe of its own."""
    context = multiprocessing.get_context("spawn")
    for _ in range(count):
        mine, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, function, initializer, initargs), daemon=True)
        process.start()
        theirs.close()  # the worker's end lives in the worker only: its death then closes the pipe
        pool.append([process, mine, None])


def _hand_out(pool, waiting):
    """A job from `waiting` to each idle worker of `pool`; WorkerDied if one died while idle."""
    for worker in pool:
        if worker[2] is None and waiting:
            worker[2] = waiting.pop()
            try:
                worker[1].send(worker[2])
            except OSError:  # it died while idle: its pipe is closed
                worker[0].join(1)
                raise WorkerDied(worker[2], worker[0].exitcode)


@contextlib.contextmanager
def each_result(function, jobs, workers=1, initializer=None, initargs=(), size=None, died=None):
    """run_jobs's (job, result) pairs for a `with` block, as the feature build and evaluate.py use them.

    With several workers the largest jobs go first (`size(job)`: a song's
    duration), so that no worker is left alone with a long one at the end;
    the workers are stopped however the block ends (Ctrl-C, an error); and
    a worker's death is raised as `died(the WorkerDied)`, the caller's own
    one-line error naming what was lost and what is kept.
    """
    if workers > 1 and size is not None:
        jobs = sorted(jobs, key=size, reverse=True)
    results = run_jobs(function, jobs, workers, initializer, initargs)
    try:
        yield results
    except WorkerDied as death:
        if died is None:
            raise
        raise died(death) from death
    finally:
        results.close()  # stops the workers if the loop did not finish


def _receive(pipe):
    """The worker's answer, or None if it died before sending one."""
    try:
        return pipe.recv() if pipe.poll() else None
    except (EOFError, OSError):
        return None


def _serve(pipe, function, initializer, initargs):
    """A worker: run `initializer` once, then answer each job with (True, result) or (False, exception)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    failed = None
    try:
        if initializer:
            initializer(*initargs)
    except Exception as err:  # every job is answered with it, so the main process raises it
        failed = err
    while True:
        try:
            job = pipe.recv()
        except EOFError:  # the main process closed its end: no more jobs
            return
        if failed is not None:
            pipe.send((False, failed))
            continue
        try:
            answer = (True, function(job))
        except Exception as err:
            answer = (False, err)
        try:
            pipe.send(answer)
        except Exception as err:  # a result or an exception that cannot be pickled
            pipe.send((False, RuntimeError(f"{job!r}: {answer[1]!r} could not be sent back ({err})")))


def available_bytes():
    """The memory the system can still give (Linux's MemAvailable), or None where it is not known."""
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None
