"""Live captions in a browser: a trio web app with one trio-stt session per tab.

The page (``index.html``) captures the microphone, turns it into 24 kHz PCM16 in an
AudioWorklet (``pcm16-worklet.js``) and streams it to ``/captions`` over a WebSocket, in
binary frames of 20 ms. For each such socket the app opens a transcription session against
``OPENAI_BASE_URL`` (OpenAI, or ``trio-stt serve``) and sends the page JSON messages:
``{"type": "partial", "text": ...}`` while a turn is spoken, ``{"type": "final", ...}``
when it is transcribed, and ``{"type": "error", "message": ...}`` if the session fails.

Everything of a tab lives in the task that serves its socket: closing the tab ends its
session at once (the socket's disconnect cancels it), and a session that fails closes that
tab's socket alone. The API key stays here: the browser never sees it.

    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 python examples/captions/app.py --port 8080

then open http://127.0.0.1:8080. A page served from anything but localhost needs HTTPS
for the browser to allow the microphone.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import trio

from trio_stt import (
    ClientConfig,
    OpenAISTTModel,
    StreamedAudioInput,
    STTError,
    STTModelSettings,
    TranscriptionDelta,
    Turn,
)

HERE = Path(__file__).parent
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/pcm16-worklet.js": ("pcm16-worklet.js", "text/javascript"),
}
MAX_FRAME_BYTES = 64 * 1024  # 20 ms is 960 bytes; a page sending more is not this page

logger = logging.getLogger("captions")
Message = dict[str, Any]


class CaptionsApp:
    """The ASGI app: the page, its worklet, and ``/captions``."""

    def __init__(
        self,
        model: str = "gpt-live-transcribe",
        config: ClientConfig | None = None,
        settings: STTModelSettings | None = None,
    ) -> None:
        self.model = model
        self.config = config or ClientConfig.from_env()
        self.settings = settings or STTModelSettings()
        self.open_tabs = 0

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http":
            await _page(scope["path"], send)
        elif scope["type"] == "websocket" and scope["path"] == "/captions":
            await self._caption(receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008})

    async def _caption(self, receive: Any, send: Any) -> None:
        """One tab: its socket feeds a session, and the session's text goes back."""
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        self.open_tabs += 1
        audio = StreamedAudioInput()
        try:
            async with (
                OpenAISTTModel(self.model, self.config) as model,
                model.create_session(audio, self.settings) as session,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(_listen, receive, audio, nursery.cancel_scope)
                async for event in session.events():
                    if isinstance(event, TranscriptionDelta):
                        await _send_json(send, {"type": "partial", "text": event.text})
                    elif isinstance(event, Turn) and event.text:
                        await _send_json(send, {"type": "final", "text": event.text})
        except STTError as exc:  # this tab's session failed: this tab is told, no other
            logger.warning("a tab's session failed: %s", exc)
            await _send_json(send, {"type": "error", "message": f"transcription failed: {exc}"})
            await send({"type": "websocket.close", "code": 1011})
        finally:
            self.open_tabs -= 1


async def _listen(receive: Any, audio: StreamedAudioInput, tab: trio.CancelScope) -> None:
    """The tab's audio into its session, until the tab goes: then everything stops."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            tab.cancel()  # the tab is closed: nobody is left to read its captions
            return
        data = message.get("bytes")
        if data and len(data) <= MAX_FRAME_BYTES and len(data) % 2 == 0:
            await audio.add_audio(np.frombuffer(data, dtype="<i2"))


async def _send_json(send: Any, message: Message) -> None:
    await send({"type": "websocket.send", "text": json.dumps(message)})


async def _page(path: str, send: Any) -> None:
    name, content_type = PAGES.get(path, (None, "text/plain"))
    body = (HERE / name).read_bytes() if name else b"not found"
    status = 200 if name else 404
    headers = [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve_captions(
    app: CaptionsApp,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve *app* on hypercorn's trio worker; ``task_status.started`` gets its URL."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("captions.server")
    config.graceful_timeout = 1.0

    class _Started:
        def started(self, binds: list[str]) -> None:
            task_status.started(binds[0])

    await serve(app, config, task_status=_Started())  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description="Live captions in a browser.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--model", default="gpt-live-transcribe")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_captions, CaptionsApp(args.model), args.host, args.port)
            logger.info("open %s in a browser", url)

    trio.run(run)


if __name__ == "__main__":
    main()
