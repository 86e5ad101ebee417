"""Stopping a training at a step boundary when the process is asked to end (SIGTERM: `kill`, a preemptible
cluster, a scheduler's time limit).

`StopSignal` replaces the signal's handler while a training runs: the signal only sets a flag, which the
training loop reads after each step; it then saves a checkpoint of that step and raises `TrainingPreempted`.
The same command, rerun, resumes from that checkpoint and ends with the weights of an uninterrupted run.
A signal outside a training gets the previous handler (by default: the process ends).

With several workers (MultiWorkerMirroredStrategy) the signal may reach only one of them: each step carries
every worker's flag through the step's all-reduce, so all see the request after the same step, all save that
step (the chief keeps the checkpoint) and all raise `TrainingPreempted`; the worker that got no signal says
"SIGTERM to another worker". On the rerun every worker resumes from the chief's checkpoint.
"""

import logging
import signal
import threading

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM,)
PREEMPTED_EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


class TrainingPreempted(Exception):
    """A stop signal ended the training at a step boundary, after a checkpoint of that step."""

    def __init__(self, step, checkpoint, signal_name="SIGTERM"):
        self.step = step
        self.checkpoint = checkpoint
        super().__init__(
            f"stopped by {signal_name} at step {step}; saved checkpoint {checkpoint}. "
            f"Run the same command again to resume from it"
        )


class StopSignal:
    """While active, the stop signals set `requested` (the signal's name) instead of ending the process.

    Only the main thread may install signal handlers; elsewhere this does nothing (and never requests)."""

    def __init__(self, signals=STOP_SIGNALS):
        self.signals = tuple(signals)
        self.requested = None
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        name = signal.Signals(signum).name
        if self.requested is None:
            logger.warning("%s received: stopping after this step with a checkpoint", name)
        self.requested = name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        return False
