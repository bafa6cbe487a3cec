"""Recognition in worker processes, so the event loop never waits on a recognizer.

PocketSphinx holds the GIL while it decodes: in a thread, one decode stalls every other
request and session of the server (a health check waited 7.9 s behind an 11 s decode). So
recognizers that can be rebuilt from a *recipe* run in worker processes, under a limiter of
``workers`` slots (the core count by default).

The workers are plain ``python -c`` children that read jobs on stdin and answer on stdout,
length-prefixed pickles. Not :mod:`multiprocessing` (nor trio-parallel, built on it): its
``spawn`` and ``forkserver`` children import the parent's ``__main__`` again, which runs a
script that starts a server without an ``if __name__ == "__main__"`` guard (the quickstart's
shape) a second time, and ``fork`` copies a process that has threads.

Each worker builds a recognizer from its recipe once and keeps it for the jobs that follow
(loading a model costs about a second). A decode whose caller is cancelled kills its worker
at once, which frees the slot for the next turn; the next job pays for a fresh worker. A
recognizer without a recipe, a user's own, runs in a thread, and a cheap one
(``blocking = False``, the scripted recognizer) runs inline, which keeps tests
deterministic under trio's mock clock.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import numpy.typing as npt
import trio

from ._recognizers import Recognition, Recognizer

__all__ = ["Recipe", "RecognitionPool", "WorkerFailed"]

_HEAD = 8  # bytes of length before each pickle
_COMMAND = "from trio_stt.server._workers import serve_jobs; serve_jobs()"


class Recipe(NamedTuple):
    """How to build a recognizer in another process: a picklable factory and its options."""

    factory: Callable[..., Recognizer]
    options: tuple[tuple[str, Hashable], ...] = ()


class WorkerFailed(RuntimeError):
    """A worker process died or its recognizer raised; the decode has no result."""


class _RecognizerFailed(WorkerFailed):
    """The recognizer raised; its worker is sound and goes back to the pool."""


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def serve_jobs() -> None:
    """A worker's life: jobs from stdin, answers to stdout, until stdin closes."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library that prints must not corrupt the answers
    jobs = sys.stdin.buffer
    built: dict[Recipe, Recognizer] = {}
    while True:
        try:
            recipe, samples, rate = pickle.loads(
                _read_exactly(jobs, int.from_bytes(_read_exactly(jobs, _HEAD), "big"))
            )
        except EOFError:
            return
        try:
            if recipe not in built:
                built[recipe] = recipe.factory(**dict(recipe.options))
            answer: tuple[str, Any] = ("ok", built[recipe].recognize(samples, rate))
        except Exception as exc:  # the parent reports it; the worker lives on
            answer = ("error", f"{type(exc).__name__}: {exc}")
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        answers.write(len(data).to_bytes(_HEAD, "big") + data)
        answers.flush()


class _Worker:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        assert process.stdin is not None
        assert process.stdout is not None
        self._jobs = process.stdin
        self._answers = process.stdout
        self._pending = bytearray()

    async def run(self, job: tuple[Recipe, npt.NDArray[np.int16], int]) -> Recognition:
        data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        await self._jobs.send_all(len(data).to_bytes(_HEAD, "big") + data)
        size = int.from_bytes(await self._receive(_HEAD), "big")
        status, value = pickle.loads(await self._receive(size))
        if status != "ok":
            raise _RecognizerFailed(f"the recognizer failed: {value}")
        result: Recognition = value
        return result

    async def _receive(self, size: int) -> bytes:
        await trio.lowlevel.checkpoint()
        while len(self._pending) < size:
            chunk = await self._answers.receive_some(max(65_536, size - len(self._pending)))
            if not chunk:
                raise WorkerFailed(f"the worker process died (exit code {self.process.poll()})")
            self._pending += chunk
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    async def stop(self, *, kill: bool) -> None:
        """Kill it (mid-job), or close its stdin and let it finish (idle)."""
        with trio.CancelScope(shield=True):
            if kill:
                self.process.kill()
            else:
                await self._jobs.aclose()
            with trio.move_on_after(2) as late:
                await self.process.wait()
            if late.cancelled_caught:
                self.process.kill()
                await self.process.wait()
            await self._jobs.aclose()
            await self._answers.aclose()


class RecognitionPool:
    """Runs recognitions: in worker processes when the recognizer has a recipe.

    Args:
        workers: decodes that may run at once (default: the core count). Further ones wait
            for a slot; a waiting or running decode whose caller is cancelled gives up its
            slot at once.

    Worker processes are started when first needed and kept while the server runs;
    :meth:`aclose` (the server calls it when it stops) ends them.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1; got {workers}")
        self.workers = workers or os.cpu_count() or 1
        self._limiter: trio.CapacityLimiter | None = None
        self._idle: list[_Worker] = []
        self._run: object = None  # trio.Process objects belong to the run that made them

    def __repr__(self) -> str:
        return f"<RecognitionPool workers={self.workers} busy={self.busy}>"

    @property
    def limiter(self) -> trio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(self.workers)
        return self._limiter

    @property
    def busy(self) -> int:
        """Decodes running now (in a process or a thread)."""
        return int(self._limiter.borrowed_tokens) if self._limiter else 0

    @property
    def has_idle_worker(self) -> bool:
        """Whether a decode started now would start at once (partials ask before starting)."""
        return self.limiter.available_tokens > 0

    async def recognize(
        self, recognizer: Recognizer, samples: npt.NDArray[np.int16], sample_rate: int
    ) -> Recognition:
        """Recognize *samples*. Raises :class:`WorkerFailed` if the worker did."""
        recipe: Recipe | None = getattr(recognizer, "recipe", None)
        if not recognizer.blocking:
            await trio.lowlevel.checkpoint()
            return recognizer.recognize(samples, sample_rate)
        if recipe is None:
            return await trio.to_thread.run_sync(
                recognizer.recognize, samples, sample_rate, limiter=self.limiter
            )
        async with self.limiter:
            worker = await self._take()
            try:
                result = await worker.run((recipe, samples, sample_rate))
            except _RecognizerFailed:
                self._idle.append(worker)
                raise
            except BaseException:  # cancelled mid-decode, or dead: never reused
                with trio.move_on_after(2, shield=True):
                    await worker.stop(kill=True)
                raise
            self._idle.append(worker)
            return result

    async def _take(self) -> _Worker:
        run = trio.lowlevel.current_root_task()
        if run is not self._run:  # a new trio run: the old run's processes are gone with it
            self._run, self._idle = run, []
        if self._idle:
            await trio.lowlevel.checkpoint()
            return self._idle.pop()
        process = await trio.lowlevel.open_process(
            [sys.executable, "-c", _COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        return _Worker(process)

    async def warm_up(self, recognizer: Recognizer) -> None:
        """Start every worker and load its model, so no request pays for it."""
        silence = np.zeros(1600, np.int16)
        async with trio.open_nursery() as nursery:
            for _ in range(self.workers):
                nursery.start_soon(self.recognize, recognizer, silence, 16_000)

    async def aclose(self) -> None:
        """End the idle workers (busy ones end with their cancelled decodes)."""
        idle, self._idle = self._idle, []
        if trio.lowlevel.current_root_task() is not self._run:
            idle = []  # another run's: they end when their pipes are collected
        async with trio.open_nursery() as nursery:
            for worker in idle:
                nursery.start_soon(partial(worker.stop, kill=False))
