"""Run the app on hypercorn's trio worker: one port for HTTP and WebSocket."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

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
        scheme, rest = self.base_url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/realtime?intent=transcription"


def _hypercorn_config(
    host: str, port: int, app: STTServerApp, certfile: str | None, keyfile: str | None
) -> object:
    from hypercorn.config import Config

    config = Config()
    config.certfile, config.keyfile = certfile, keyfile
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
    certfile: str | None = None,
    keyfile: str | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve *app* until cancelled; ``task_status.started`` gets the base URL.

    Binds loopback by default: exposing a server that may hold an API key or transcribe
    private audio is something to ask for explicitly. With *access_log*, each request (and
    each WebSocket session) is logged to the ``trio_stt.server.access`` logger once it is
    over, path without query. With *certfile* and *keyfile* (PEM), it serves HTTPS and
    WSS only: for a server off loopback, so keys and audio do not cross the network in clear.
    """
    try:
        from hypercorn.trio import serve as hypercorn_serve
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError("hypercorn", "the local server") from exc

    class _Status:
        def started(self, binds: list[str]) -> None:
            task_status.started(binds[0] + "/v1")

    if (certfile is None) != (keyfile is None):
        raise ValueError("TLS needs both a certfile and a keyfile")
    config = _hypercorn_config(host, port, app, certfile, keyfile)
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
    certfile: str | None = None,
    keyfile: str | None = None,
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
        start = partial(serve, certfile=certfile, keyfile=keyfile)
        base_url = await nursery.start(start, app, host, port)
        try:
            yield RunningServer(base_url=base_url, app=app)
        finally:
            nursery.cancel_scope.cancel()
