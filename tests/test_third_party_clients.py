"""openai-python and the Agents SDK against the local server, with OpenAI's own types.

What these clients receive is validated with openai-python's pydantic models in strict mode
(no coercion), and no model may carry a field the type does not declare: a server that
passes here sends nothing OpenAI's clients do not expect. The clients are asyncio programs,
so each runs in a worker thread with its own event loop while the server runs in the test's
trio loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import numpy as np
import openai
import pydantic
import pytest
import soxr
import trio
from openai.types.audio import (
    Transcription,
    TranscriptionDiarized,
    TranscriptionStreamEvent,
    TranscriptionVerbose,
)
from openai.types.realtime import RealtimeServerEvent

from trio_stt._audio import write_wav
from trio_stt.server import PocketSphinxRecognizer
from trio_stt.testing import (
    FakeServer,
    bundled_samples,
    open_fake_server,
    silence,
    speech_like,
    word_error_rate,
)

T = TypeVar("T")


# Fields OpenAI itself sends that openai-python's types do not declare: verbose_json's task
# (docs/protocol.md §3.2), and the session object's id, object and expires_at, which
# session.created/updated carry although the SDK types them with the request's shape (§1.4).
OPENAI_SENDS_TOO = {"$.task", "$.session.object", "$.session.id", "$.session.expires_at"}


def strictly(kind: Any, obj: Any) -> Any:
    """*obj* as OpenAI's type *kind*, with no coercion and no field the type lacks."""
    value = pydantic.TypeAdapter(kind).validate_python(obj, strict=True)
    unknown = [path for path in _unknown_fields(value, "$") if path not in OPENAI_SENDS_TOO]
    assert not unknown, f"fields OpenAI's types do not have: {unknown} in {obj}"
    return value


def _unknown_fields(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, pydantic.BaseModel):
        yield from (f"{path}.{key}" for key in value.model_extra or {})
        for name in type(value).model_fields:
            yield from _unknown_fields(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unknown_fields(item, f"{path}[{i}]")


async def in_asyncio(run: Callable[[], Awaitable[T]], limit_s: float = 30) -> T:
    """Run an asyncio client to completion in a worker thread of its own (bounded: a thread
    cannot be cancelled from trio, so the asyncio side enforces the limit itself)."""
    bounded = partial(asyncio.wait_for, run(), limit_s)
    return await trio.to_thread.run_sync(partial(asyncio.run, bounded()))  # type: ignore[arg-type]


def client_for(server: FakeServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-local",
        base_url=server.base_url,
        websocket_base_url=server.base_url.replace("http://", "ws://", 1),
        max_retries=0,
    )


def wav(seconds: float = 1.0) -> bytes:
    return write_wav((speech_like(seconds) * 32767).astype(np.int16), 24_000)


# ---------------------------------------------------------------------------------- REST

REST_CASES = [
    ("whisper-1", "json", Transcription),
    ("whisper-1", "verbose_json", TranscriptionVerbose),
    ("whisper-1", "text", str),
    ("whisper-1", "srt", str),
    ("whisper-1", "vtt", str),
    ("gpt-transcribe", "json", Transcription),
    ("gpt-transcribe", "text", str),
    ("gpt-4o-transcribe", "json", Transcription),
    ("gpt-4o-mini-transcribe", "json", Transcription),
    ("gpt-4o-transcribe-diarize", "diarized_json", TranscriptionDiarized),
]


@pytest.mark.parametrize(("model", "response_format", "kind"), REST_CASES)
async def test_every_rest_format_fits_openai_pythons_types(
    model: str, response_format: str, kind: Any
) -> None:
    async def transcribe(server: FakeServer) -> tuple[str, str]:
        client = client_for(server)
        raw = await client.audio.transcriptions.with_raw_response.create(
            model=model,
            file=("speech.wav", wav(), "audio/wav"),
            response_format=response_format,  # type: ignore[arg-type]
            **(
                {"timestamp_granularities": ["word", "segment"]}
                if response_format == "verbose_json"
                else {}
            ),
        )
        await client.close()
        return raw.headers["content-type"], raw.http_response.text

    async with open_fake_server(["hello there world"]) as server:
        content_type, body = await in_asyncio(lambda: transcribe(server))
    if kind is str:
        assert content_type.startswith("text/plain")
        assert "hello there world" in body
        return
    parsed = strictly(kind, json.loads(body))
    assert parsed.text == "hello there world"
    if model.startswith("gpt-4o") and kind is Transcription:
        assert parsed.usage.type == "tokens"
    if model == "gpt-transcribe":
        assert parsed.languages is not None


@pytest.mark.parametrize("model", ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"])
async def test_streamed_transcription_fits_openai_pythons_types(model: str) -> None:
    async def stream(server: FakeServer) -> list[Any]:
        client = client_for(server)
        events = await client.audio.transcriptions.create(
            model=model,
            file=("speech.wav", wav(), "audio/wav"),
            stream=True,
            include=["logprobs"],
        )
        payloads = [event.model_dump(mode="json", exclude_unset=True) async for event in events]
        await client.close()
        return payloads

    async with open_fake_server(["hello there world"]) as server:
        payloads = await in_asyncio(lambda: stream(server))
    events = [strictly(TranscriptionStreamEvent, payload) for payload in payloads]
    assert [e.type for e in events][-1] == "transcript.text.done"
    assert "".join(e.delta for e in events[:-1]) == "hello there world"
    assert events[-1].usage is not None and events[-1].usage.type == "tokens"
    assert all(p.bytes for e in events[:-1] for p in e.logprobs or ())


# ------------------------------------------------------------------------------ realtime


def b64(samples: np.ndarray) -> str:
    return base64.b64encode((samples * 32767).astype("<i2").tobytes()).decode()


async def realtime_exchange(
    server: FakeServer, model: str, turn_detection: dict[str, Any] | None, audio: np.ndarray
) -> list[dict[str, Any]]:
    """openai-python's realtime client: configure, stream, commit if manual, read to the end."""
    client = client_for(server)
    received: list[dict[str, Any]] = []
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:

        async def until(kind: str) -> None:
            while True:
                event = json.loads(await connection.recv_bytes())
                received.append(event)
                if event["type"] in (kind, "error"):
                    return

        await until("session.created")
        await connection.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": model},
                        "turn_detection": turn_detection,
                    }
                },
                "include": ["item.input_audio_transcription.logprobs"]
                if model.startswith("gpt-4o")
                else [],
            }  # type: ignore[typeddict-item]
        )
        await until("session.updated")
        await connection.input_audio_buffer.append(audio=b64(audio))
        if turn_detection is None:
            await connection.input_audio_buffer.commit()
        await until("conversation.item.input_audio_transcription.completed")
        # whatever audio the VAD left, then nothing at all: OpenAI's error for that
        await connection.input_audio_buffer.commit()
        await connection.input_audio_buffer.commit()
        await until("error")
    await client.close()
    return received


@pytest.mark.parametrize(
    ("model", "turn_detection"),
    [
        ("gpt-live-transcribe", None),
        ("gpt-4o-transcribe", {"type": "server_vad", "silence_duration_ms": 300}),
        ("gpt-transcribe", {"type": "semantic_vad", "eagerness": "high"}),
        ("whisper-1", None),
    ],
)
async def test_every_realtime_event_fits_openai_pythons_types(
    model: str, turn_detection: dict[str, Any] | None
) -> None:
    audio = np.concatenate([silence(0.5), speech_like(1.0), silence(1.0)])
    async with open_fake_server(["hello there world"]) as server:
        received = await in_asyncio(lambda: realtime_exchange(server, model, turn_detection, audio))
    events = [strictly(RealtimeServerEvent, event) for event in received]
    kinds = [event.type for event in events]
    assert kinds[:2] == ["session.created", "session.updated"]
    assert "input_audio_buffer.committed" in kinds
    if turn_detection is not None:
        assert "input_audio_buffer.speech_started" in kinds
        assert "input_audio_buffer.speech_stopped" in kinds
    completed = next(e for e in events if e.type.endswith("transcription.completed"))
    assert completed.transcript == "hello there world"
    assert events[-1].type == "error"
    assert events[-1].error.code == "input_audio_buffer_commit_empty"


async def test_a_refused_update_fits_openai_pythons_error_type() -> None:
    async def refused(server: FakeServer) -> dict[str, Any]:
        client = client_for(server)
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.recv_bytes()
            await conn.send(
                {
                    "type": "session.update",
                    "event_id": "cfg_1",
                    "session": {
                        "type": "transcription",
                        "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe",
                                                              "keywords": ["AC-42"]}}},
                    },
                }  # type: ignore[arg-type, typeddict-item]
            )  # fmt: skip
            answer: dict[str, Any] = json.loads(await conn.recv_bytes())
        await client.close()
        return answer

    async with open_fake_server() as server:
        answer = await in_asyncio(lambda: refused(server))
    error = strictly(RealtimeServerEvent, answer)
    assert error.type == "error"
    assert (error.error.event_id, error.error.param) == (
        "cfg_1",
        "session.audio.input.transcription.keywords",
    )


# ------------------------------------------------------------------------- the Agents SDK


async def agents_sdk_turns(server: FakeServer, samples: np.ndarray) -> list[str]:
    """The Agents SDK's OpenAISTTModel, as its voice pipeline drives it."""
    from agents import set_tracing_disabled
    from agents.voice import StreamedAudioInput, STTModelSettings
    from agents.voice.models.openai_stt import OpenAISTTModel

    set_tracing_disabled(True)
    model = OpenAISTTModel("gpt-4o-transcribe", client_for(server))
    audio = StreamedAudioInput()
    session = await model.create_session(audio, STTModelSettings(), False, False)

    async def speak() -> None:
        while not session.connected:
            await asyncio.sleep(0.01)
        for start in range(0, samples.size, 2400):  # 100 ms at a time, as fast as it takes
            await audio.add_audio(samples[start : start + 2400])
        await audio.add_audio(silence(1.0))
        await audio.add_audio(None)  # type: ignore[arg-type]

    speaker = asyncio.create_task(speak())
    turns = [turn async for turn in session.transcribe_turns()]
    await speaker
    await session.close()
    return turns


@pytest.mark.speech
@pytest.mark.parametrize("index", [0, 1])
async def test_the_agents_sdk_gets_every_turn_of_a_recording(index: int) -> None:
    sample = [s for s in bundled_samples() if len(s.turns) > 1][index]
    frames, rate = sample.read()
    samples = soxr.resample(frames.astype(np.float32) / 32768, rate, 24_000)
    async with open_fake_server(recognizer=PocketSphinxRecognizer()) as server:
        turns = await in_asyncio(lambda: agents_sdk_turns(server, samples))
    assert len(turns) == len(sample.turns), turns
    assert word_error_rate(sample.text, " ".join(turns)) <= 0.35


async def test_a_streamed_diarized_transcription_names_each_deltas_segment() -> None:
    async def stream(server: FakeServer) -> list[Any]:
        client = client_for(server)
        events = await client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize",
            file=("speech.wav", wav(), "audio/wav"),
            response_format="diarized_json",
            stream=True,
        )
        payloads = [event.model_dump(mode="json", exclude_unset=True) async for event in events]
        await client.close()
        return payloads

    async with open_fake_server(["hello there world"]) as server:
        payloads = await in_asyncio(lambda: stream(server))
    # The done event is left out: its duration usage is what OpenAI sends for diarize, and
    # openai-python types usage there as tokens only (protocol.md, 3.3).
    assert payloads[-1]["type"] == "transcript.text.done"
    events = [strictly(TranscriptionStreamEvent, payload) for payload in payloads[:-1]]
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert "".join(d.delta for d in deltas) == "hello there world"
    assert {d.segment_id for d in deltas} == {s.id for s in segments} == {"seg_001"}
