"""What OpenAI refuses in a transcription session, refused here the same way.

A client that works against the local server must work against OpenAI, so the server does
not accept what OpenAI would not: misspelled keys, values outside an enum, options the model
does not take, unknown models, the Beta event name on a GA connection, and a URL that opens a
conversation session rather than a transcription one (``?model=`` or no
``intent=transcription``). Each refusal is an ``error`` event in OpenAI's words
(docs/protocol.md §1.5, §1.11): the code, the message shape and the ``param`` path, with the
client's ``event_id`` echoed by the caller. ``ServerConfig(lenient=True)`` (``trio-stt serve
--lenient``) turns all of it off.

What a model takes comes from :data:`trio_stt._settings.MODEL_CAPABILITIES`, the table the
client checks its own settings against, so the two cannot disagree.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .._settings import MODEL_CAPABILITIES

__all__ = [
    "Refusal",
    "check_url",
    "check_event_type",
    "check_update",
    "check_transcription_request",
    "model_not_found",
    "models_listing",
]

_DELAYS = ("minimal", "low", "medium", "high", "xhigh")
_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
_EAGERNESS = ("low", "medium", "high", "auto")
_NOISE = ("near_field", "far_field")
_INCLUDE = ("item.input_audio_transcription.logprobs",)
_GA_CLIENT_EVENTS = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)
_VAD_KEYS = {
    "server_vad": (
        "type",
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
        "idle_timeout_ms",
        "create_response",
        "interrupt_response",
    ),
    "semantic_vad": ("type", "eagerness", "create_response", "interrupt_response"),
}
CONVERSATION_SESSION = (
    "Passing a transcription session update event to a realtime session is not allowed."
)


@dataclass(frozen=True)
class Refusal:
    """An ``error`` event's ``error`` object, less the ``event_id`` the caller adds."""

    message: str
    code: str
    param: str | None = None
    status: int = 400  # REST only


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


def check_url(query: str, *, client_secret: bool = False) -> bool:
    """Whether the handshake's query opens a transcription session, as OpenAI decides it.

    ``?model=...`` or no ``intent`` opens a conversation session; its transcription updates
    are refused later with :data:`CONVERSATION_SESSION`, as on OpenAI (the handshake itself
    succeeds there too). A client secret names its session's type, so it needs no intent.
    """
    params = parse_qs(query)
    if "model" in params:
        return False
    return params.get("intent") == ["transcription"] or (client_secret and "intent" not in params)


def check_event_type(kind: str) -> Refusal | None:
    """A GA connection takes the four GA client events and nothing else."""
    if kind in _GA_CLIENT_EVENTS:
        return None
    return Refusal(
        f"Invalid value: '{kind}'. Supported values are: {_listed(_GA_CLIENT_EVENTS)}.",
        "invalid_value",
        "type",
    )


def check_update(message: Mapping[str, Any], current_model: str | None) -> Refusal | None:
    """The first thing OpenAI would refuse in a GA ``session.update``, or ``None``.

    *current_model* is the model already configured: an update that leaves the model out is
    checked against it, since updates are patches.
    """
    try:
        _check_update(message, current_model)
    except _Refused as refused:
        return refused.refusal
    return None


def _check_update(message: Mapping[str, Any], current_model: str | None) -> None:
    _keys(message, "", ("type", "event_id", "session"))
    session = _object(message.get("session"), "session")
    _keys(session, "session", ("type", "audio", "include"))
    if "include" in session:
        for i, entry in enumerate(_array(session["include"], "session.include")):
            _enum(entry, f"session.include[{i}]", _INCLUDE)
    if "audio" not in session:
        return
    audio = _object(session["audio"], "session.audio")
    _keys(audio, "session.audio", ("input",))
    if "input" not in audio:
        return
    path = "session.audio.input"
    audio_input = _object(audio["input"], path)
    _keys(audio_input, path, ("format", "transcription", "turn_detection", "noise_reduction"))
    if "format" in audio_input:
        _check_format(audio_input["format"], f"{path}.format")
    if audio_input.get("noise_reduction") is not None:
        noise = _object(audio_input["noise_reduction"], f"{path}.noise_reduction")
        _keys(noise, f"{path}.noise_reduction", ("type",))
        _enum(noise.get("type"), f"{path}.noise_reduction.type", _NOISE)
    if audio_input.get("turn_detection") is not None:
        _check_turn_detection(audio_input["turn_detection"], f"{path}.turn_detection")
    if audio_input.get("transcription") is not None:
        _check_transcription(audio_input["transcription"], f"{path}.transcription", current_model)


def _check_format(value: Any, path: str) -> None:
    fmt = _object(value, path)
    _keys(fmt, path, ("type", "rate"))
    kind = _enum(fmt.get("type"), f"{path}.type", _FORMATS)
    if "rate" in fmt and kind == "audio/pcm":
        rate = _integer(fmt["rate"], f"{path}.rate")
        if rate < 24_000:
            raise _Refused(
                Refusal(
                    f"Invalid '{path}.rate': integer below minimum value. Expected a value >= "
                    f"24000, but got {rate} instead.",
                    "integer_below_min_value",
                    f"{path}.rate",
                )
            )
        if rate > 24_000:
            raise _Refused(
                Refusal(
                    f"Invalid '{path}.rate': integer above maximum value. Expected a value <= "
                    f"24000, but got {rate} instead.",
                    "integer_above_max_value",
                    f"{path}.rate",
                )
            )


MAX_VAD_MS = 60_000


def _check_turn_detection(value: Any, path: str) -> None:
    vad = _object(value, path)
    kind = _enum(vad.get("type"), f"{path}.type", tuple(_VAD_KEYS))
    _keys(vad, path, _VAD_KEYS[kind])
    if "threshold" in vad:
        threshold = _number(vad["threshold"], f"{path}.threshold")
        if not 0.0 <= threshold <= 1.0:
            raise _Refused(
                Refusal(
                    f"Invalid '{path}.threshold': expected a value between 0 and 1, but got "
                    f"{threshold} instead.",
                    "invalid_value",
                    f"{path}.threshold",
                )
            )
    for key in ("prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"):
        if key in vad and vad[key] is not None:
            ms = _integer(vad[key], f"{path}.{key}")
            if ms < 0:
                raise _Refused(
                    Refusal(
                        f"Invalid '{path}.{key}': integer below minimum value. Expected a value "
                        f">= 0, but got {ms} instead.",
                        "integer_below_min_value",
                        f"{path}.{key}",
                    )
                )
            if ms > MAX_VAD_MS:  # OpenAI's bound is not published; this server's is a minute
                raise _Refused(
                    Refusal(
                        f"Invalid '{path}.{key}': integer above maximum value. Expected a value "
                        f"<= {MAX_VAD_MS}, but got {ms} instead.",
                        "integer_above_max_value",
                        f"{path}.{key}",
                    )
                )
    if "eagerness" in vad:
        _enum(vad["eagerness"], f"{path}.eagerness", _EAGERNESS)
    for key in ("create_response", "interrupt_response"):
        if key in vad and not isinstance(vad[key], bool):
            raise _Refused(_wrong_type(f"{path}.{key}", "a boolean", vad[key]))


def _check_transcription(value: Any, path: str, current_model: str | None) -> None:
    block = _object(value, path)
    _keys(block, path, ("model", "language", "languages", "prompt", "keywords", "delay"))
    model = current_model
    if "model" in block:
        model = _enum(
            _string(block["model"], f"{path}.model"),
            f"{path}.model",
            tuple(name for name, caps in MODEL_CAPABILITIES.items() if caps.realtime),
        )
    caps = MODEL_CAPABILITIES.get(model or "")
    if block.get("language") is not None:
        _string(block["language"], f"{path}.language")
    if block.get("prompt") is not None:
        _string(block["prompt"], f"{path}.prompt")
        _supported(caps is None or caps.prompt, "prompt", path)
    if block.get("delay") is not None:
        _enum(block["delay"], f"{path}.delay", _DELAYS)
        _supported(caps is None or caps.delay, "delay", path)
    if block.get("languages") is not None:
        for i, entry in enumerate(_array(block["languages"], f"{path}.languages")):
            _string(entry, f"{path}.languages[{i}]")
        _supported(caps is None or caps.languages_list, "languages", path)
        if block.get("language") is not None:
            raise _Refused(
                Refusal(
                    "Only one of 'language' and 'languages' may be set.",
                    "invalid_value",
                    f"{path}.languages",
                )
            )
    if block.get("keywords") is not None:
        for i, entry in enumerate(_array(block["keywords"], f"{path}.keywords")):
            keyword = _string(entry, f"{path}.keywords[{i}]")
            if any(c in keyword for c in "<>\r\n"):
                raise _Refused(
                    Refusal(
                        f"Invalid '{path}.keywords[{i}]': keywords may not contain '<', '>' or "
                        "line breaks.",
                        "invalid_value",
                        f"{path}.keywords[{i}]",
                    )
                )
        _supported(caps is None or caps.keywords, "keywords", path)


def check_transcription_request(
    model: str, response_format: str, include: Sequence[str]
) -> Refusal | None:
    """What OpenAI refuses in ``POST /v1/audio/transcriptions`` that a lenient server takes."""
    caps = MODEL_CAPABILITIES.get(model)
    if caps is None:
        return model_not_found(model)
    if not caps.rest:
        return Refusal(
            f"The model `{model}` is only available in realtime transcription "
            "sessions (/v1/realtime?intent=transcription).",
            "unsupported_value",
            "model",
        )
    if response_format not in caps.rest_formats:
        return Refusal(
            f"response_format '{response_format}' is not compatible with model "
            f"'{model}'. Use {_listed(sorted(caps.rest_formats), 'or')}.",
            "unsupported_value",
            "response_format",
        )
    if "logprobs" in include and not (caps.logprobs and response_format == "json"):
        return Refusal(
            "logprobs are only available with response_format 'json' and the "
            "gpt-4o-transcribe family.",
            "unsupported_value",
            "include",
        )
    return None


def model_not_found(model: str) -> Refusal:
    """OpenAI's 404 for a model it does not have (a transcription request, ``/models/{id}``)."""
    return Refusal(
        f"The model `{model}` does not exist or you do not have access to it.",
        "model_not_found",
        "model",
        404,
    )


def models_listing() -> dict[str, Any]:
    """``GET /v1/models``: the speech-to-text models the server answers to, as OpenAI lists them."""
    return {"object": "list", "data": [model_object(name) for name in MODEL_CAPABILITIES]}


def model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}


# ------------------------------------------------------------------ one value at a time


def _keys(obj: Mapping[str, Any], path: str, known: Sequence[str]) -> None:
    for key in obj:
        if key not in known:
            where = f"{path}.{key}" if path else key
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise _Refused(
                Refusal(f"Unknown parameter: '{where}'.{hint}", "unknown_parameter", where)
            )


def _supported(ok: bool, option: str, path: str) -> None:
    if not ok:
        raise _Refused(
            Refusal(
                f"{option} is not supported for this model.",
                "unsupported_parameter",
                f"{path}.{option}",
            )
        )


def _enum(value: Any, path: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        shown = value if isinstance(value, str) else repr(value)
        raise _Refused(
            Refusal(
                f"Invalid value: '{shown}'. Supported values are: {_listed(allowed)}.",
                "invalid_value",
                path,
            )
        )
    return str(value)


def _listed(values: Sequence[str], conjunction: str = "and") -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + f", {conjunction} {quoted[-1]}"


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Refused(_wrong_type(path, "an object", value))
    return value


def _array(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Refused(_wrong_type(path, "an array", value))
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _Refused(_wrong_type(path, "a string", value))
    return value


def _integer(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Refused(_wrong_type(path, "an integer", value))
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Refused(_wrong_type(path, "a number", value))
    return float(value)


def _wrong_type(path: str, expected: str, value: Any) -> Refusal:
    got = {
        bool: "a boolean",
        int: "an integer",
        float: "a decimal",
        str: "a string",
        list: "an array",
        type(None): "null",
    }.get(type(value), "an object")
    return Refusal(
        f"Invalid type for '{path}': expected {expected}, but got {got} instead.",
        "invalid_type",
        path,
    )
