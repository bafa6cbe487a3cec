"""Property tests of the parse boundary: arbitrary JSON in the shape of every response format,
every SSE event and every realtime event gives a typed result or one of our errors."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_stt import STTError, Transcription
from trio_stt._protocol import RealtimeConnection
from trio_stt._rest import SSEDecoder, parse_sse_data, parse_transcription
from trio_stt._results import TranscriptStreamEvent
from trio_stt._untrusted import Fields

from .test_protocol import ready

HOSTILE_NUMBERS = st.sampled_from(
    [math.nan, math.inf, -math.inf, 10**400, -(10**30), -1, 2**53 + 1]
)
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | HOSTILE_NUMBERS | st.text(max_size=12)
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


def shaped(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of *fields*, each either its own strategy or anything at all."""
    return st.fixed_dictionaries({}, optional={k: v | anything for k, v in fields.items()})


numbers = st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e4)
logprob = shaped(token=st.text(max_size=5), logprob=st.floats(max_value=0),
                 bytes=st.lists(st.integers(0, 255), max_size=3))  # fmt: skip
usage = shaped(
    type=st.sampled_from(["duration", "tokens", "characters"]),
    seconds=numbers,
    input_tokens=st.integers(0, 99),
    output_tokens=st.integers(0, 99),
    total_tokens=st.integers(0, 99),
    input_token_details=shaped(audio_tokens=st.integers(0, 99), text_tokens=st.integers(0, 99)),
)
segment = shaped(id=st.integers(0, 9) | st.text(max_size=4), start=numbers, end=numbers,
                 text=st.text(max_size=8), speaker=st.text(max_size=3))  # fmt: skip
word = shaped(word=st.text(max_size=6), start=numbers, end=numbers)
languages = st.lists(shaped(code=st.sampled_from(["en", "fr"])), max_size=2)

transcription_bodies = shaped(
    text=st.text(max_size=10),
    language=st.text(max_size=4),
    languages=languages,
    duration=numbers,
    segments=st.lists(segment, max_size=3),
    words=st.lists(word, max_size=3),
    logprobs=st.lists(logprob, max_size=3),
    usage=usage,
)
sse_events = (
    shaped(type=st.just("transcript.text.delta"), delta=st.text(max_size=5),
           logprobs=st.lists(logprob, max_size=2), segment_id=st.text(max_size=4))
    | segment.map(lambda s: {**s, "type": "transcript.text.segment"})
    | shaped(type=st.just("transcript.text.done"), text=st.text(max_size=5),
             logprobs=st.lists(logprob, max_size=2), usage=usage, languages=languages)
    | shaped(type=st.just("future.event"), error=shaped(message=st.text(max_size=5)))
)  # fmt: skip
realtime_events = st.one_of(
    shaped(type=st.just("conversation.item.input_audio_transcription.delta"),
           item_id=st.sampled_from(["a", "b"]), delta=st.text(max_size=4),
           logprobs=st.lists(logprob, max_size=2)),
    shaped(type=st.just("conversation.item.input_audio_transcription.completed"),
           item_id=st.sampled_from(["a", "b"]), transcript=st.text(max_size=4), usage=usage,
           logprobs=st.lists(logprob, max_size=2), languages=languages),
    shaped(type=st.just("conversation.item.input_audio_transcription.failed"),
           item_id=st.sampled_from(["a", "b"]),
           error=shaped(message=st.text(max_size=4), code=st.text(max_size=4))),
    shaped(type=st.sampled_from(["input_audio_buffer.speech_started",
                                 "input_audio_buffer.speech_stopped"]),
           item_id=st.sampled_from(["a", "b"]), audio_start_ms=st.integers(0, 9999),
           audio_end_ms=st.integers(0, 9999)),
    shaped(type=st.just("input_audio_buffer.committed"), item_id=st.sampled_from(["a", "b"]),
           previous_item_id=st.sampled_from(["a", "b"])),
    shaped(type=st.just("error"),
           error=shaped(message=st.text(max_size=4), code=st.text(max_size=4),
                        event_id=st.text(max_size=4), param=st.text(max_size=4))),
    shaped(type=st.sampled_from(["session.updated", "conversation.item.added"]),
           session=shaped(audio=anything), item=shaped(id=st.text(max_size=3))),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(transcription_bodies, st.sampled_from(["json", "verbose_json", "diarized_json"]))
def test_any_json_body_is_a_transcription_or_our_error(body: dict[str, Any], fmt: str) -> None:
    try:
        result = parse_transcription(json.dumps(body), fmt)
    except STTError:
        return
    assert isinstance(result, Transcription) and result.text == body["text"]
    numbers_out = [result.duration or 0.0] + [x for s in result.segments for x in (s.start, s.end)]
    assert all(math.isfinite(x) and x >= 0 for x in numbers_out)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["json", "text", "srt", "vtt", "verbose_json"]))
def test_any_text_body_is_a_transcription_or_our_error(body: str, fmt: str) -> None:
    try:
        parse_transcription(body, fmt)
    except STTError:
        pass


@settings(max_examples=300, deadline=None)
@given(sse_events)
def test_any_sse_event_is_typed_or_our_error(event: dict[str, Any]) -> None:
    decoder = SSEDecoder()
    complete = None
    for line in f"data: {json.dumps(event)}\n\n".splitlines(keepends=True):
        complete = decoder.feed_line(line) or complete
    assert complete is not None
    try:
        parsed = parse_sse_data(complete[1])
    except STTError:
        return
    assert parsed is None or isinstance(parsed, TranscriptStreamEvent)


@settings(max_examples=300, deadline=None)
@given(st.lists(realtime_events, max_size=10))
def test_any_realtime_event_is_typed_or_our_error(events: list[dict[str, Any]]) -> None:
    conn: RealtimeConnection = ready()
    for event in events:
        try:
            conn.receive(json.dumps(event))
        except STTError:
            return


@pytest.mark.parametrize(
    ("obj", "read", "message"),
    [
        ({"n": None}, lambda f: f.number("n"), "'n' should be a finite number >= 0, got null"),
        ({"n": math.nan}, lambda f: f.number("n"), "got a non-finite number (nan)"),
        ({"n": -1}, lambda f: f.count("n"), "got an integer (-1)"),
        ({"n": 1.5}, lambda f: f.count("n"), "'n' should be an integer from 0"),
        ({"n": True}, lambda f: f.number("n"), "got a boolean (true)"),
        ({"s": 3}, lambda f: f.optional_text("s"), "'s' should be a string, got an integer (3)"),
        ({"a": {}}, lambda f: f.array("a"), "'a' should be an array, got an object"),
        ({"o": [1]}, lambda f: f.objects("o"), "'o[0]' should be an object, got an integer (1)"),
    ],
)
def test_errors_name_the_field_and_what_was_there(
    obj: dict[str, Any], read: Any, message: str
) -> None:
    with pytest.raises(STTError, match=re.escape(message)) as info:
        read(Fields(obj, "thing"))
    assert str(info.value).startswith("thing: '")


def test_absent_and_null_optional_fields_take_their_defaults() -> None:
    fields = Fields({"s": None, "n": None}, "thing")
    assert fields.optional_text("s") is None and fields.optional_text("missing") is None
    assert fields.optional_number("n") is None and fields.optional_count("missing") is None
    assert fields.array("missing") == [] and fields.objects("s") == []
    assert fields.optional_object("n") is None
