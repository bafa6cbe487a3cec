"""The local server refuses what OpenAI refuses, in OpenAI's words, and answers as OpenAI does.

Each deviation the server once had gets a test here, spoken over a real WebSocket in the
protocol's own JSON (no client library in between to smooth things over), and the same
exchange against a lenient server shows that ``lenient=True`` still takes it.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import numpy as np
import pytest
import soundfile
import soxr
import trio
import trio_websocket

from trio_stt._audio import write_wav
from trio_stt.testing import FakeServer, open_fake_server, silence, speech_like

LIVE = {"model": "gpt-live-transcribe"}


def update(
    transcription: Mapping[str, Any] | None = None, event_id: str = "upd_1", **input_: Any
) -> dict[str, Any]:
    audio_input: dict[str, Any] = dict(input_)
    if transcription is not None:
        audio_input["transcription"] = dict(transcription)
    return {
        "type": "session.update",
        "event_id": event_id,
        "session": {"type": "transcription", "audio": {"input": audio_input}},
    }


class Peer:
    """A bare WebSocket client: JSON in, JSON out."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, event: Mapping[str, Any]) -> None:
        await self.ws.send_message(json.dumps(event))

    async def receive(self) -> dict[str, Any]:
        with trio.fail_after(10):
            return dict(json.loads(await self.ws.get_message()))

    async def answer(self, event: Mapping[str, Any]) -> dict[str, Any]:
        await self.send(event)
        return await self.receive()

    async def until(self, kind: str) -> dict[str, Any]:
        while (event := await self.receive())["type"] != kind:
            pass
        return event


@asynccontextmanager
async def peer(server: FakeServer, query: str = "intent=transcription") -> AsyncIterator[Peer]:
    url = server.base_url.replace("http://", "ws://", 1) + "/realtime" + (f"?{query}" * bool(query))
    async with trio_websocket.open_websocket_url(url) as ws:
        connected = Peer(ws)
        created = await connected.receive()
        assert created["type"] == "session.created"
        yield connected


def error_of(event: Mapping[str, Any]) -> dict[str, Any]:
    assert event["type"] == "error", event
    return dict(event["error"])


REFUSED = [  # (what the client sends, OpenAI's code, param, words of the message)
    pytest.param(
        {"type": "transcription_session.update", "event_id": "upd_1", "session": {}},
        "invalid_value", "type", "Invalid value: 'transcription_session.update'.",
        id="beta-event-name-on-ga",
    ),
    pytest.param(
        update({**LIVE, "keyword": ["AC-42"]}, turn_detection=None),
        "unknown_parameter", "session.audio.input.transcription.keyword",
        "Unknown parameter: 'session.audio.input.transcription.keyword'. Did you mean 'keywords'?",
        id="misspelled-key",
    ),
    pytest.param(
        update({**LIVE, "delay": "bogus"}, turn_detection=None),
        "invalid_value", "session.audio.input.transcription.delay",
        "Invalid value: 'bogus'. Supported values are: 'minimal', 'low', 'medium', 'high', "
        "and 'xhigh'.",
        id="bad-enum-value",
    ),
    pytest.param(
        update({"model": "gpt-4o-transcribe", "keywords": ["AC-42"]}),
        "unsupported_parameter", "session.audio.input.transcription.keywords",
        "keywords is not supported for this model.",
        id="keywords-for-gpt-4o-transcribe",
    ),
    pytest.param(
        update({"model": "gpt-5-transcribe-ultra"}),
        "invalid_value", "session.audio.input.transcription.model",
        "Invalid value: 'gpt-5-transcribe-ultra'. Supported values are: 'gpt-live-transcribe'",
        id="unknown-model",
    ),
    pytest.param(
        update({"model": "gpt-4o-transcribe"},
               turn_detection={"type": "server_vad", "threshold": "high"}),
        "invalid_type", "session.audio.input.turn_detection.threshold",
        "expected a number, but got a string instead.",
        id="wrong-type",
    ),
    pytest.param(
        update({"model": "gpt-transcribe", "language": "en", "languages": ["en"]}),
        "invalid_value", "session.audio.input.transcription.languages",
        "Only one of 'language' and 'languages' may be set.",
        id="language-and-languages",
    ),
]  # fmt: skip
SIXTEEN_KHZ = pytest.param(  # refused lenient or not: the local server decodes 24 kHz PCM only
    update(LIVE, turn_detection=None, format={"type": "audio/pcm", "rate": 16000}),
    "integer_below_min_value", "session.audio.input.format.rate",
    "integer below minimum value. Expected a value >= 24000, but got 16000 instead.",
    id="16-khz",
)  # fmt: skip


@pytest.mark.parametrize(("event", "code", "param", "words"), [*REFUSED, SIXTEEN_KHZ])
async def test_what_openai_refuses_is_refused_in_its_words(
    event: dict[str, Any], code: str, param: str, words: str
) -> None:
    async with open_fake_server() as server, peer(server) as client:
        error = error_of(await client.answer(event))
        assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code,
                                                                   param)  # fmt: skip
        assert words in error["message"]
        assert error["event_id"] == "upd_1"  # the client's own id, for correlation
        # the session is still there, and a good update is still answered
        fixed = await client.answer(update(LIVE, event_id="upd_2", turn_detection=None))
        assert fixed["type"] == "session.updated"
        assert fixed["session"]["audio"]["input"]["transcription"]["model"] == "gpt-live-transcribe"


@pytest.mark.parametrize(("event", "code", "param", "words"), REFUSED)
async def test_a_lenient_server_takes_all_of_it(
    event: dict[str, Any], code: str, param: str, words: str
) -> None:
    async with open_fake_server(lenient=True) as server, peer(server) as client:
        answer = await client.answer(event)
        assert answer["type"] in ("session.updated", "transcription_session.updated"), answer


@pytest.mark.parametrize("query", ["model=gpt-4o-transcribe", "", "intent=realtime"])
async def test_a_url_that_opens_a_conversation_session_refuses_transcription_updates(
    query: str,
) -> None:
    async with open_fake_server() as server:
        url = server.base_url.replace("http://", "ws://", 1) + "/realtime?" + query
        async with trio_websocket.open_websocket_url(url) as ws:
            created = json.loads(await ws.get_message())["session"]
        # announced as what it is: a conversation session, not a transcription session
        assert (created["type"], created["object"]) == ("realtime", "realtime.session")
        async with peer(server, query) as client:
            error = error_of(await client.answer(update(LIVE, turn_detection=None)))
            assert error["code"] == "invalid_parameter"
            words = "Passing a transcription session update event to a realtime session"
            assert error["message"] == words + " is not allowed."
        async with open_fake_server(lenient=True) as lenient, peer(lenient, query) as client:
            assert (await client.answer(update(LIVE, turn_detection=None)))["type"] == (
                "session.updated"
            )


async def test_updates_are_patches() -> None:
    first = update({"model": "gpt-4o-transcribe", "prompt": "billing"}, turn_detection=None)
    first["session"]["include"] = ["item.input_audio_transcription.logprobs"]
    later = update(event_id="upd_2", noise_reduction={"type": "near_field"})
    async with open_fake_server() as server, peer(server) as client:
        assert (await client.answer(first))["type"] == "session.updated"
        echoed = (await client.answer(later))["session"]
    audio_input = echoed["audio"]["input"]
    assert audio_input["transcription"]["model"] == "gpt-4o-transcribe"  # not reset to null
    assert audio_input["transcription"]["prompt"] == "billing"
    assert audio_input["turn_detection"] is None  # not back to server_vad
    assert audio_input["noise_reduction"] == {"type": "near_field"}
    assert echoed["include"] == ["item.input_audio_transcription.logprobs"]  # not dropped


async def test_sessions_say_when_they_expire() -> None:
    async with open_fake_server() as server:
        url = server.base_url.replace("http://", "ws://", 1) + "/realtime?intent=transcription"
        async with trio_websocket.open_websocket_url(url) as ws:
            created = json.loads(await ws.get_message())
    assert abs(created["session"]["expires_at"] - (time.time() + 3600)) < 60


def b64(samples: np.ndarray) -> str:
    return base64.b64encode((samples * 32767).astype("<i2").tobytes()).decode()


@pytest.mark.parametrize(
    ("model", "usage_type"),
    [("gpt-4o-transcribe", "tokens"), ("gpt-4o-mini-transcribe", "tokens"),
     ("gpt-transcribe", "duration"), ("gpt-live-transcribe", "duration")],
)  # fmt: skip
async def test_usage_is_billed_as_openai_bills_the_model(model: str, usage_type: str) -> None:
    async with open_fake_server(["two words"]) as server, peer(server) as client:
        assert (await client.answer(update({"model": model}, turn_detection=None)))["type"] == (
            "session.updated"
        )
        await client.send({"type": "input_audio_buffer.append", "audio": b64(speech_like(1.5))})
        await client.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
        usage = (await client.until("conversation.item.input_audio_transcription.completed"))[
            "usage"
        ]
    assert usage["type"] == usage_type
    if usage_type == "tokens":
        assert usage["output_tokens"] == 2
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        assert usage["input_token_details"]["audio_tokens"] == usage["input_tokens"]
    else:
        assert usage == {"type": "duration", "seconds": 2}  # 1.5 s, rounded up


@pytest.mark.parametrize(("lenient", "after_speech_ms"), [(False, 500), (True, 100)])
async def test_speech_stopped_comes_when_the_silence_ran_out(
    lenient: bool, after_speech_ms: int
) -> None:
    vad = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
           "silence_duration_ms": 500}  # fmt: skip
    audio = np.concatenate([silence(1.0), speech_like(1.0), silence(1.5)])
    async with open_fake_server(lenient=lenient) as server, peer(server) as client:
        answer = await client.answer(update({"model": "gpt-4o-transcribe"}, turn_detection=vad))
        assert answer["type"] == "session.updated"
        await client.send({"type": "input_audio_buffer.append", "audio": b64(audio)})
        stopped = await client.until("input_audio_buffer.speech_stopped")
    assert abs(stopped["audio_end_ms"] - (2000 + after_speech_ms)) <= 30


def g711_b64(samples: np.ndarray, subtype: str) -> str:
    """24 kHz float audio as a phone line carries it, encoded by libsndfile."""
    out = io.BytesIO()
    narrow = soxr.resample(samples.astype(np.float32), 24_000, 8000)
    soundfile.write(out, narrow, 8000, format="RAW", subtype=subtype)
    return base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize(("law", "subtype", "beta"), [("audio/pcmu", "ULAW", "g711_ulaw"),
                                                       ("audio/pcma", "ALAW", "g711_alaw")])  # fmt: skip
async def test_g711_is_taken_at_8_khz_and_heard_by_the_vad(
    law: str, subtype: str, beta: str
) -> None:
    vad = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
           "silence_duration_ms": 500}  # fmt: skip
    event = update({"model": "gpt-4o-transcribe"}, turn_detection=vad, format={"type": law})
    audio = np.concatenate([silence(1.0), speech_like(1.0), silence(1.5)])
    async with open_fake_server() as server, peer(server) as client:
        answer = await client.answer(event)
        assert answer["session"]["audio"]["input"]["format"] == {"type": law}  # no rate
        await client.send({"type": "input_audio_buffer.append", "audio": g711_b64(audio, subtype)})
        started = await client.until("input_audio_buffer.speech_started")
        stopped = await client.until("input_audio_buffer.speech_stopped")
        # A commit counts G.711 at 8 bytes a millisecond: 700 bytes are 87.5 ms.
        await client.send(update(event_id="upd_2", turn_detection=None))
        await client.until("session.updated")
        await client.send({"type": "input_audio_buffer.clear"})
        await client.until("input_audio_buffer.cleared")
        await client.send({"type": "input_audio_buffer.append", "audio": "1" * 4 * 233 + "1Q=="})
        await client.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
        refused = error_of(await client.until("error"))
    assert abs(started["audio_start_ms"] - (1000 - 300)) <= 30
    assert abs(stopped["audio_end_ms"] - 2500) <= 30
    assert refused["code"] == "input_audio_buffer_commit_empty"
    assert "buffer only has 87.50ms of audio" in refused["message"]
    # The Beta dialect names the same formats its own way.
    beta_update = {"type": "transcription_session.update", "event_id": "b1",
                   "session": {"input_audio_format": beta}}  # fmt: skip
    async with open_fake_server() as server:
        url = server.base_url.replace("http://", "ws://", 1) + "/realtime?intent=transcription"
        headers = [("OpenAI-Beta", "realtime=v1")]
        async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
            client = Peer(ws)
            await client.receive()
            answer = await client.answer(beta_update)
    assert answer["session"]["input_audio_format"] == beta


# ---------------------------------------------------------------------------------- REST


def wav_bytes(seconds: float = 0.5) -> bytes:
    return write_wav((speech_like(seconds) * 32767).astype(np.int16), 24_000)


async def post(server: FakeServer, **fields: str) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=server.base_url) as http:
        return await http.post(
            "/audio/transcriptions",
            data=fields,
            files={"file": ("speech.wav", wav_bytes(), "audio/wav")},
        )


@pytest.mark.parametrize(
    ("fields", "status", "code", "param"),
    [
        ({"model": "gpt-4o-transcribe", "response_format": "srt"}, 400, "unsupported_value",
         "response_format"),
        ({"model": "whisper-2"}, 404, "model_not_found", "model"),
        ({"model": "gpt-live-transcribe"}, 400, "unsupported_value", "model"),
        ({"model": "whisper-1", "include[]": "logprobs"}, 400, "unsupported_value", "include"),
    ],
)  # fmt: skip
async def test_rest_refuses_what_openai_refuses(
    fields: dict[str, str], status: int, code: str, param: str
) -> None:
    async with open_fake_server() as server:
        refused = await post(server, **fields)
    assert refused.status_code == status
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    async with open_fake_server(lenient=True) as lenient:
        assert (await post(lenient, **fields)).status_code == 200


async def test_srt_names_the_formats_the_model_has() -> None:
    async with open_fake_server() as server:
        refused = await post(server, model="gpt-4o-transcribe", response_format="srt")
    assert refused.json()["error"]["message"] == (
        "response_format 'srt' is not compatible with model 'gpt-4o-transcribe'. Use 'json'."
    )


async def test_whisper_1_answers_a_stream_request_with_a_plain_body() -> None:
    async with open_fake_server(["plain words"]) as server:
        answer = await post(server, model="whisper-1", stream="true")
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["text"] == "plain words"


async def test_models_are_listed() -> None:
    async with open_fake_server() as server, httpx2.AsyncClient(base_url=server.base_url) as http:
        listing = (await http.get("/models")).json()
        one = await http.get("/models/whisper-1")
        missing = await http.get("/models/whisper-2")
    assert listing["object"] == "list"
    assert {"whisper-1", "gpt-live-transcribe", "gpt-4o-transcribe"} <= {
        m["id"] for m in listing["data"]
    }
    assert one.json() == {"id": "whisper-1", "object": "model", "created": 1_700_000_000,
                          "owned_by": "system"}  # fmt: skip
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


async def test_models_need_the_key_when_the_server_requires_one() -> None:
    """``/v1/models`` answered 200 to a wrong key while every other path said 401."""
    key = "sk-the-servers-key-0123456789"
    async with open_fake_server(api_key=key) as server, httpx2.AsyncClient() as http:
        wrong = await http.get(
            f"{server.base_url}/models", headers={"Authorization": "Bearer sk-no"}
        )
        right = await http.get(
            f"{server.base_url}/models", headers={"Authorization": f"Bearer {key}"}
        )
    assert wrong.status_code == 401 and "invalid_api_key" in wrong.text
    assert right.status_code == 200 and right.json()["object"] == "list"
