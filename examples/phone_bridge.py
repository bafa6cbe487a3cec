"""A phone bridge: calls arrive over Twilio Media Streams, each gets a trio-stt session.

Twilio (and SignalWire, Telnyx and Fonoster, which speak the same messages) opens a
WebSocket to this server for every call and sends, as JSON text: ``connected``, then
``start`` with the call's ids and its media format, then a ``media`` message every 20 ms
holding 160 bytes of 8 kHz G.711 in base64, ``mark`` and ``dtmf`` along the way, and
``stop`` when the caller hangs up. The bytes go to OpenAI as they came (``audio/pcmu`` or
``audio/pcma``): no decode, no resample, a sixth of the bytes of 24 kHz PCM.

Each call is a task of the WebSocket server's nursery, and everything of the call lives
inside it: the session, the task that carries the caller's audio into it, the turns. So:

* a hang-up (``stop``) ends the call's input: the session commits what the caller said
  last, and gets ``final_turn_grace`` seconds to transcribe it before the session is closed;
* a socket that closes without ``stop`` ends the session at once;
* a session that fails (the upstream refused the key, went away, ...) ends that call alone,
  closing its socket with 1011; the other calls never notice;
* a slow upstream slows the reading of the caller's socket (the input is bounded), rather
  than piling the call up in memory.

Run it against the local server (``trio-stt serve`` in another shell)::

    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 python examples/phone_bridge.py --port 8080

or against OpenAI with ``OPENAI_API_KEY`` set, behind a TLS proxy that Twilio can reach
(``<Connect><Stream url="wss://your-host/calls"/></Connect>`` in the call's TwiML).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import trio
import trio_websocket

from trio_stt import (
    OpenAISTTModel,
    SessionOptions,
    StreamedAudioInput,
    STTError,
    STTModelSettings,
)

logger = logging.getLogger("phone_bridge")

G711 = Literal["audio/pcmu", "audio/pcma"]
ENCODINGS: dict[str, G711] = {"audio/x-mulaw": "audio/pcmu", "audio/x-alaw": "audio/pcma"}
"""Twilio's ``mediaFormat.encoding`` names, and OpenAI's for the same G.711 laws."""


class CarrierProtocolError(Exception):
    """The carrier's messages are not Media Streams as this bridge knows them."""


@dataclass
class Call:
    """What happened on one call, for logs and tests. Times are ``trio.current_time()``."""

    stream_sid: str
    call_sid: str
    audio_format: G711
    turns: list[str] = field(default_factory=list)
    media_bytes: int = 0
    hung_up: str | None = None
    """How the caller left: ``"stop"``, or ``"closed"`` for a socket that closed without."""
    hung_up_at: float | None = None
    ended_at: float | None = None
    """When the call's session was over, closed and gone."""
    ended: trio.Event = field(default_factory=trio.Event, repr=False)
    """Set at :attr:`ended_at`."""
    error: str | None = None


class PhoneBridge:
    """A Media Streams endpoint that transcribes every call with its own session.

    Args:
        model: the model every call's session is opened on.
        settings: the sessions' settings (server VAD finds the caller's turns).
        options: the sessions' options (reconnect, timeouts, ...).
        final_turn_grace: seconds a hung-up call's session gets to finish its last turn.
    """

    def __init__(
        self,
        model: OpenAISTTModel,
        settings: STTModelSettings,
        *,
        options: SessionOptions | None = None,
        final_turn_grace: float = 0.5,
    ) -> None:
        self.model = model
        self.settings = settings
        self.options = options
        self.final_turn_grace = final_turn_grace
        self.calls: list[Call] = []

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Take calls on *host*:*port* until cancelled; ``nursery.start`` gives the port."""
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                trio_websocket.serve_websocket, self._handle, host, port, None
            )
            task_status.started(server.port)

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await self.run_call(ws)
        except (trio_websocket.ConnectionClosed, CarrierProtocolError) as exc:
            logger.info("call ended before it started: %s", exc)

    async def run_call(self, ws: trio_websocket.WebSocketConnection) -> None:
        """Transcribe one call from its ``start`` to its hang-up."""
        call = await self._answer(ws)
        self.calls.append(call)
        audio = StreamedAudioInput(format=call.audio_format)
        try:
            session_cm = self.model.create_session(audio, self.settings, options=self.options)
            async with session_cm as session, trio.open_nursery() as nursery:
                nursery.start_soon(self._carry, ws, audio, call, nursery.cancel_scope)
                async for text in session.transcribe_turns():
                    call.turns.append(text)
                    logger.info("%s: %s", call.call_sid, text)
                nursery.cancel_scope.cancel()  # every turn is out: stop reading the socket
        except STTError as exc:
            call.error = str(exc)
            logger.warning("%s: transcription failed: %s", call.call_sid, exc)
            await ws.aclose(1011, "transcription failed")
        finally:
            call.ended_at = trio.current_time()
            call.ended.set()
        await ws.aclose()

    async def _answer(self, ws: trio_websocket.WebSocketConnection) -> Call:
        """Read up to ``start``: the call's ids and the law its audio is in."""
        while True:
            message = _parse(await ws.get_message())
            if message.get("event") == "start":
                break
        start = message.get("start")
        if not isinstance(start, dict):
            raise CarrierProtocolError("a start message without its start object")
        media_format = start.get("mediaFormat") or {}
        encoding = media_format.get("encoding")
        if encoding not in ENCODINGS or media_format.get("sampleRate", 8000) != 8000:
            await ws.aclose(1003, "only 8 kHz G.711 (audio/x-mulaw, audio/x-alaw) is taken")
            raise CarrierProtocolError(f"unsupported media format {media_format!r}")
        return Call(
            str(start.get("streamSid") or message.get("streamSid")),
            str(start.get("callSid")),
            ENCODINGS[encoding],
        )

    async def _carry(
        self,
        ws: trio_websocket.WebSocketConnection,
        audio: StreamedAudioInput,
        call: Call,
        call_scope: trio.CancelScope,
    ) -> None:
        """The caller's audio into the session, until the caller hangs up."""
        try:
            await self._take_media(ws, audio, call)
        except trio_websocket.ConnectionClosed:
            call.hung_up = "closed"  # nobody is left to hear the last turn
        except CarrierProtocolError as exc:
            call.error = str(exc)
            logger.warning("%s: %s", call.call_sid, exc)
        else:
            call.hung_up = "stop"
        call.hung_up_at = trio.current_time()
        grace = 0.0
        if call.hung_up == "stop":
            await audio.aclose()  # the session commits what the caller said last
            grace = self.final_turn_grace
        await trio.sleep(grace)
        call_scope.cancel()

    async def _take_media(
        self, ws: trio_websocket.WebSocketConnection, audio: StreamedAudioInput, call: Call
    ) -> None:
        while True:
            message = _parse(await ws.get_message())
            event = message.get("event")
            if event == "media":
                media = message.get("media") or {}
                if media.get("track", "inbound") == "inbound":
                    chunk = _payload(media)
                    call.media_bytes += len(chunk)
                    await audio.add_audio(chunk)
            elif event == "stop":
                return
            elif event in ("mark", "dtmf"):
                logger.debug("%s: %s %s", call.call_sid, event, message.get(event))


def _parse(text: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise CarrierProtocolError(f"a message that is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise CarrierProtocolError("a message that is not a JSON object")
    return message


def _payload(media: dict[str, Any]) -> bytes:
    try:
        chunk = base64.b64decode(media.get("payload") or "", validate=True)
    except (binascii.Error, TypeError) as exc:
        raise CarrierProtocolError(f"media payload is not base64: {exc}") from None
    if not chunk:
        raise CarrierProtocolError("media message without audio")
    return chunk


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--model", default="gpt-4o-transcribe", help="transcription model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = STTModelSettings(turn_detection={"type": "server_vad"})
    async with OpenAISTTModel(args.model) as model:
        bridge = PhoneBridge(model, settings)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(bridge.serve, args.host, args.port)
            logger.info("taking Media Streams calls on ws://%s:%d", args.host, port)


if __name__ == "__main__":
    trio.run(main)
