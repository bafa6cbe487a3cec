"""Run the app on hypercorn's trio worker: one port for HTTP and WebSocket."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from .._errors import MissingDependencyError
from ._access_log import AccessLog
from ._app import ServerConfig, STTServerApp

__all__ = ["RunningServer", "open_server", "serve"]


@dataclass(frozen=True)
class RunningServer:
    """A server started by :func:`open_server`.

    ``base_url`` is what a client's ``base_url`` should be (``http://127.0.0.1:PORT/v1``);
    ``app`` gives tests its hooks (faults, recorded requests and sessions).
    """

    base_url: str
    app: STTServerApp

    @property
    def websocket_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/realtime?intent=transcription"


def _hypercorn_config(host: str, port: int, app: STTServerApp) -> object:
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None  # ours is AccessLog: see why in its module
    config.errorlog = logging.getLogger("trio_stt.server")
    config.graceful_timeout = 1.0
    config.websocket_ping_interval = None
    config.websocket_max_message_size = app.config.max_message_bytes
    config.h11_max_incomplete_size = 64 * 1024
    return config


async def serve(
    app: STTServerApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    access_log: bool = False,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve *app* until cancelled; ``task_status.started`` gets the base URL.

    Binds loopback by default: exposing a server that may hold an API key or transcribe
    private audio is something to ask for explicitly. With *access_log*, each request (and
    each WebSocket session) is logged to the ``trio_stt.server.access`` logger once it is
    over, path without query.
    """
    try:
        from hypercorn.trio import serve as hypercorn_serve
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError("hypercorn", "the local server") from exc

    class _Status:
        def started(self, binds: list[str]) -> None:
            task_status.started(binds[0] + "/v1")

    config = _hypercorn_config(host, port, app)
    asgi = AccessLog(app) if access_log else app
    try:
        await hypercorn_serve(asgi, config, task_status=_Status())  # type: ignore[arg-type]
    finally:
        await app.pool.aclose()  # the worker processes end with the server


@asynccontextmanager
async def open_server(
    config: ServerConfig | STTServerApp | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[RunningServer]:
    """Start a server for the duration of the block (port 0 picks a free port).

    Example:
        ```python
        config = ServerConfig(recognizer=ScriptedRecognizer(["hi"]))
        async with open_server(config) as srv:
            model = OpenAISTTModel("gpt-transcribe", ClientConfig(base_url=srv.base_url))
        ```
    """
    app = config if isinstance(config, STTServerApp) else STTServerApp(config)
    async with trio.open_nursery() as nursery:
        base_url = await nursery.start(serve, app, host, port)
        try:
            yield RunningServer(base_url=base_url, app=app)
        finally:
            nursery.cancel_scope.cancel()
