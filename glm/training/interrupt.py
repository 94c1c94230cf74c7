"""Ctrl-C and SIGTERM as a request to stop at the next step boundary.

A scheduler sends SIGTERM some time before it kills a job, and a user presses Ctrl-C; either way the
run should end at a clean point (never inside a step or a save), optionally save, and say which
checkpoint to resume from.  The handler only records the signal; the training loop asks
:meth:`StopRequest.requested` after every step.  In a multi-rank job the ranks agree by an all-reduce,
so they all stop after the same step even when the signal reached only some of them.  A second
Ctrl-C stops at once (``KeyboardInterrupt``), for a user who does not want to wait.

Owns the signal handling, the ranks' agreement to stop, and the words that say where a stopped run
resumes from (:func:`resume_note`, :meth:`StopRequest.message`).  Must not touch: the step or the
saving itself (the training core saves on a stop unless told not to).
"""

import os
import signal
import sys

from ..checkpoint.layout import read_tracker
from .distributed import max_over_ranks

SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


def resume_note(save_dir):
    """Which checkpoint of the run's folder ``save_dir`` (None without ``--save``) a stopped run
    resumes from, in words."""
    tag = read_tracker(save_dir) if save_dir and os.path.isdir(save_dir) else None
    if tag is None:
        return "no checkpoint was saved" + ("" if save_dir else " (no --save)")
    return f"the last complete checkpoint is {os.path.join(save_dir, tag)}: resume with --load {save_dir}"


class RunInterrupted(Exception):
    """A run stopped on request at a clean point; the message says which checkpoint resumes it."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class StopRequest:
    """Records SIGINT/SIGTERM between :meth:`install` and :meth:`restore`."""

    def __init__(self, announce=True):
        self.signum = None
        self.announce = announce
        self._previous = {}

    def install(self):
        for signum in SIGNAL_NAMES:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is None and self.announce:
            print(f"\n{SIGNAL_NAMES[signum]} received: stopping after the current step "
                  "(press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
        self.signum = self.signum or signum

    def requested(self):
        """Whether any rank received a stop signal (a collective call when several ranks run)."""
        received = max_over_ranks(self.signum or 0)
        if self.signum is None and received:
            self.signum = received
        return bool(received)

    def message(self, iteration, save_dir, where=""):
        """``stopped by <signal> after iteration N<where>; <resume note>``."""
        return f"stopped by {self.name} after iteration {iteration}{where}; {resume_note(save_dir)}"

    @property
    def name(self):
        return SIGNAL_NAMES.get(self.signum, str(self.signum))

    @property
    def exit_code(self):
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + int(self.signum)
