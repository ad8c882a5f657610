"""Stopping a generation between UNet steps: a :class:`CancelToken` set from another thread, checked by the
pipelines' denoising loops before every UNet evaluation, which then raise :class:`Cancelled`.

The server's worker makes one token per running batch and sets it when nobody waits for the batch's
clips any more (the request timed out, or its client went away); ``riffusion.generation.generate_clips``
and every pipeline's ``riffuse_batch`` take it as ``cancel=``.
"""

from __future__ import annotations

import threading
import typing as T


class Cancelled(Exception):
    """A generation stopped because its token was set.

    Attributes
    ----------
    reason : str
        Why the token was set (e.g. "the request timed out").
    steps_done : int
        UNet steps the stopped loop had finished.
    """

    def __init__(self, reason: str, steps_done: int = 0):
        super().__init__(f"cancelled after {steps_done} steps: {reason}")
        self.reason = reason
        self.steps_done = steps_done


class CancelToken:
    """A one-way flag, like :class:`threading.Event`, with the reason it was set.

    Safe to set from any thread; the first reason given is kept.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reason: T.Optional[str] = None

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the computation holding this token to stop at its next step."""
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"reason must be a non-empty string, got {reason!r}")
        with self._lock:
            if self._reason is None:
                self._reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> T.Optional[str]:
        """Why the token was set (None while it is not)."""
        return self._reason

    def wait(self, timeout: T.Optional[float] = None) -> bool:
        """Block until the token is set or ``timeout`` seconds pass; True if it is set."""
        return self._event.wait(timeout)

    def __repr__(self) -> str:
        return f"CancelToken({'cancelled: ' + self._reason if self._reason else 'live'})"


def raise_if_cancelled(cancel: T.Optional[CancelToken], *, steps_done: int) -> None:
    """Raise :class:`Cancelled` if ``cancel`` is set (a denoising loop calls this before each UNet step).

    Parameters
    ----------
    cancel : CancelToken or None
        None: the computation cannot be cancelled (a CLI run, a notebook).
    steps_done : int
        The loop's finished steps, reported in the exception.

    Raises
    ------
    Cancelled
        If the token is set.
    TypeError
        If ``cancel`` is neither None nor a :class:`CancelToken`.
    """
    if cancel is None:
        return
    if not isinstance(cancel, CancelToken):
        raise TypeError(f"cancel must be a CancelToken or None, got {type(cancel).__name__}")
    if cancel.cancelled:
        raise Cancelled(cancel.reason or "cancelled", steps_done)
