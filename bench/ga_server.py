"""A scripted GA realtime transcription server for the side-by-side benchmark.

    python bench/ga_server.py          # prints ws://127.0.0.1:PORT, serves until killed

It does no recognition: it counts the audio each connection appends and, for every second of it,
says where the speech started and stopped (as OpenAI's VAD does), commits an item and completes
it at once with a transcript that is its own ``time.monotonic()`` (system-wide on Linux, so a
client in another process can compute the turn's latency). It answers ``session.update`` with
the merged configuration, a commit with ``committed`` + ``completed`` (or OpenAI's
``input_audio_buffer_commit_empty``), and a clear with ``cleared``: enough for both the Agents
SDK's session and trio-stt's.

asyncio and the ``websockets`` package, the fastest stack on offer, so that at 500 streams
the server is not the bottleneck. A connection to the path ``/stats`` receives one JSON
message with the server's CPU seconds, event-loop lag and counters since the last ``/stats``,
then is closed; the harness reads it after each cell to show the server kept up.

The clients stamp every frame they hand over (see ``_cell.stamped``); the server reads the
stamps out of the appends it receives and reports the delay between hand-over and arrival,
which is what a client's send policy adds to the audio's way to the recognizer.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import resource
import time
from array import array
from typing import Any

from _cell import STAMP, percentile_ms
from websockets.asyncio.server import ServerConnection, serve

BYTES_PER_SECOND = {"audio/pcm": 48_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}
"""24 kHz PCM16 mono, or 8 kHz G.711: what a second of each format is."""


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu0 = usage.ru_utime + usage.ru_stime
        self.wall0 = time.monotonic()
        self.messages = 0
        self.appends = 0
        self.audio_ms = 0
        self.wire_bytes = 0  # every client message, as it came: JSON and base64
        self.turns = 0
        self.connections = 0
        self.lags: list[float] = []
        self.delays = array("d")

    def snapshot(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        lags = sorted(self.lags) or [0.0]
        delays = sorted(self.delays) or [float("nan")]
        result = {
            "cpu_s": usage.ru_utime + usage.ru_stime - self.cpu0,
            "wall_s": time.monotonic() - self.wall0,
            "messages": self.messages,
            "appends": self.appends,
            "audio_s": self.audio_ms / 1000,
            "wire_bytes": self.wire_bytes,
            "turns": self.turns,
            "connections": self.connections,
            "lag_p99_ms": percentile_ms(lags, 0.99),
            "lag_max_ms": 1000 * lags[-1],
            "send_delay_p50_ms": percentile_ms(delays, 0.5),
            "send_delay_p99_ms": percentile_ms(delays, 0.99),
        }
        self.reset()
        return result


STATS = Stats()


async def measure_lag(period: float = 0.01) -> None:
    """How late the loop wakes a sleeper: the server's own queueing delay."""
    while True:
        start = time.monotonic()
        await asyncio.sleep(period)
        STATS.lags.append(max(0.0, time.monotonic() - start - period))


class StampReader:
    """Finds the frame stamps in one connection's audio, however it was split into appends."""

    def __init__(self) -> None:
        self.received = 0  # bytes of audio before the next append
        self.next_frame = 0  # where the next stamped frame starts
        self.frame_size = 0  # read from the first stamp; 0 = not yet, -1 = not stamped audio

    def read(self, audio: bytes) -> None:
        now, end = time.monotonic(), self.received + len(audio)
        while self.frame_size >= 0 and self.next_frame + STAMP.size <= end:
            at = self.next_frame - self.received
            if at < 0 and not self.frame_size:  # the first stamp was split: give up
                self.frame_size = -1
            elif at >= 0:  # a stamp split across two appends is skipped
                stamp, size = STAMP.unpack_from(audio, at)
                if not (0 < size < 10_000_000 and -1 < now - stamp < 60):
                    self.frame_size = -1
                    break
                self.frame_size = size
                STATS.delays.append(now - stamp)
            self.next_frame += self.frame_size
        self.received = end


def _event(kind: str, counter: list[int], **fields: Any) -> str:
    counter[0] += 1
    return json.dumps({"type": kind, "event_id": f"event_{counter[0]}", **fields})


def _merge(config: dict[str, Any], update: dict[str, Any]) -> None:
    """``session.update`` patches: nested objects merge, other values replace."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _merge(config[key], value)
        else:
            config[key] = value


async def transcription(ws: ServerConnection) -> None:
    if ws.request is not None and ws.request.path.startswith("/stats"):
        await ws.send(json.dumps(STATS.snapshot()))
        return
    STATS.connections += 1
    counter = [0]
    # expires_at as OpenAI sends it, so that a client's rotation costs what it costs there.
    config: dict[str, Any] = {
        "type": "transcription",
        "expires_at": int(time.time()) + 3600,
        "audio": {"input": {}},
    }
    buffered = 0
    items = 0
    previous: str | None = None
    stamps = StampReader()

    heard_ms = 0  # audio received on this connection, in ms
    turn_began_ms = 0

    async def turn(vad: bool) -> None:
        nonlocal items, previous, turn_began_ms
        items += 1
        item_id = f"item_{items}"
        if vad:  # as OpenAI's VAD does: where the speech began and ended, then the commit
            await ws.send(_event("input_audio_buffer.speech_started", counter,
                                 item_id=item_id, audio_start_ms=turn_began_ms))  # fmt: skip
            await ws.send(_event("input_audio_buffer.speech_stopped", counter,
                                 item_id=item_id, audio_end_ms=heard_ms))  # fmt: skip
        turn_began_ms = heard_ms
        await ws.send(_event("input_audio_buffer.committed", counter, item_id=item_id,
                             previous_item_id=previous))  # fmt: skip
        previous = item_id
        STATS.turns += 1
        await ws.send(
            _event("conversation.item.input_audio_transcription.completed", counter,
                   item_id=item_id, content_index=0, transcript=f"{time.monotonic():.6f}",
                   usage={"type": "duration", "seconds": 1})
        )  # fmt: skip

    await ws.send(_event("session.created", counter, session=config))
    second = BYTES_PER_SECOND["audio/pcm"]  # until the session names another format
    async for message in ws:
        STATS.messages += 1
        STATS.wire_bytes += len(message)
        if '"input_audio_buffer.append"' in message:  # the hot path: no JSON parse
            start = message.index('"audio"')
            start = message.index('"', start + 7) + 1
            end = message.index('"', start)
            audio = binascii.a2b_base64(message[start:end])
            stamps.read(audio)
            size = len(audio)
            STATS.appends += 1
            STATS.audio_ms += size * 1000 // second
            buffered += size
            heard_ms += size * 1000 // second
            while buffered >= second:  # the "VAD": a turn per second of audio
                buffered -= second
                await turn(vad=True)
            continue
        event = json.loads(message)
        kind = event.get("type")
        if kind == "session.update":
            _merge(config, event.get("session") or {})
            audio_format = config["audio"]["input"].get("format") or {}
            second = BYTES_PER_SECOND.get(audio_format.get("type", "audio/pcm"), second)
            await ws.send(_event("session.updated", counter, session=config))
        elif kind == "input_audio_buffer.commit" and buffered:
            buffered = 0
            await turn(vad=False)
        elif kind == "input_audio_buffer.commit":
            error = {"type": "invalid_request_error", "code": "input_audio_buffer_commit_empty",
                     "message": "buffer too small", "event_id": event.get("event_id")}  # fmt: skip
            await ws.send(_event("error", counter, error=error))
        elif kind == "input_audio_buffer.clear":
            buffered = 0
            await ws.send(_event("input_audio_buffer.cleared", counter))


async def main() -> None:
    lag = asyncio.create_task(measure_lag())
    async with serve(transcription, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"ws://127.0.0.1:{port}", flush=True)
        await asyncio.Future()
    lag.cancel()


if __name__ == "__main__":
    asyncio.run(main())
