"""Background tasks beside a body of user code, with each side's exceptions kept apart.

A plain nursery wraps whatever leaves it in an exception group, so code that yields to its
user from inside one (the session, the WebSocket connection) would hand back the user's own
``ValueError`` inside a group of ours, and ``except ValueError`` would stop working. trio's
docs ("Designing for multiple errors") call this out; trio-websocket spends a hundred lines
undoing it afterwards. We avoid it instead:

* the body's exception is caught at the ``yield``, the tasks are cancelled, and once the
  nursery has closed the *same object* is raised again, so it leaves the ``async with``
  exactly as it came in (``@asynccontextmanager`` restores its traceback);
* the tasks' failures, if any, are turned into one exception by the caller's *choose*;
* when both happen, the task failure wins only if the body was merely cancelled (which is
  what a task failure does to it); a real exception from the user wins otherwise;
* a group holding nothing but ``Cancelled`` is an outer cancellation passing through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import trio

from ._errors import exception_leaves

__all__ = ["open_supervised_nursery", "is_cancellation"]

Chooser = Callable[[Sequence[BaseException]], BaseException]


def is_cancellation(exc: BaseException) -> bool:
    """``Cancelled``, or a group of nothing else."""
    return all(isinstance(leaf, trio.Cancelled) for leaf in exception_leaves(exc))


@asynccontextmanager
async def open_supervised_nursery(choose: Chooser) -> AsyncIterator[trio.Nursery]:
    """A nursery whose body's exception comes out unwrapped (see the module docstring).

    *choose* gets the tasks' failures (``Cancelled`` removed, never empty) and returns the
    one exception to raise; it should return a ``KeyboardInterrupt`` or ``SystemExit`` among
    them as it is.
    """
    body_error: BaseException | None = None
    task_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:  # noqa: ASYNC103 - raised again once the tasks are gone
                body_error = exc
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        failures = [e for e in exception_leaves(group) if not isinstance(e, trio.Cancelled)]
        if not failures and body_error is None:
            raise  # an outer cancellation, on its way out
        if failures and (body_error is None or is_cancellation(body_error)):
            task_error = choose(failures)
    # Raised outside the except clause, so neither picks up the group as its __context__.
    if task_error is not None:
        raise task_error
    if body_error is not None:
        raise body_error
