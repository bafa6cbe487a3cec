"""The two shapes of the transcription session: GA (current) and Beta (retired May 2026).

Everything that differs between them is here: the names of the session events, the shape of
the session update, the audio format names, and whether the handshake carries
``OpenAI-Beta: realtime=v1``. The rest of the protocol (audio buffer and transcription
events) has the same names in both.

GA is the only shape OpenAI accepts; Beta exists for compatible servers that never moved on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .._settings import STTModelSettings, capabilities_for
from ._events import SessionConfig

__all__ = [
    "Dialect",
    "DIALECTS",
    "handshake_headers",
    "build_session_update",
    "parse_session_update",
    "CREATED_TYPES",
    "UPDATED_TYPES",
]

Dialect = Literal["ga", "beta"]
DIALECTS: tuple[Dialect, ...] = ("ga", "beta")

UPDATE_TYPE = {"ga": "session.update", "beta": "transcription_session.update"}
CREATED_TYPE = {"ga": "session.created", "beta": "transcription_session.created"}
UPDATED_TYPE = {"ga": "session.updated", "beta": "transcription_session.updated"}
# A tolerant client accepts either name whichever dialect it speaks.
CREATED_TYPES = frozenset(CREATED_TYPE.values())
UPDATED_TYPES = frozenset(UPDATED_TYPE.values())
LOGPROBS_INCLUDE = "item.input_audio_transcription.logprobs"

_BETA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}


def handshake_headers(dialect: Dialect) -> list[tuple[str, str]]:
    """Extra handshake headers. GA must *not* send ``OpenAI-Beta`` (close 4000 if it does)."""
    return [("OpenAI-Beta", "realtime=v1")] if dialect == "beta" else []


def effective_turn_detection(model: str, settings: STTModelSettings) -> Mapping[str, Any] | None:
    """What we ask for: the settings' value, else ``semantic_vad`` (the Agents SDK's default),
    except ``None`` (an explicit JSON null) for models that refuse server VAD."""
    if settings.turn_detection == "manual":
        return None
    if settings.turn_detection is not None:
        return dict(settings.turn_detection)
    return {"type": "semantic_vad"} if capabilities_for(model).server_vad else None


def _transcription_block(model: str, settings: STTModelSettings) -> dict[str, Any]:
    caps = capabilities_for(model)
    block: dict[str, Any] = {"model": model}
    languages = settings.language_list()
    if languages and caps.languages_list:
        block["languages"] = languages
    elif languages:
        block["language"] = languages[0]
    if settings.prompt and caps.prompt:
        block["prompt"] = settings.prompt
    if settings.keywords:
        block["keywords"] = list(settings.keywords)
    if settings.delay:
        block["delay"] = settings.delay
    return block


def build_session_update(
    model: str, settings: STTModelSettings, dialect: Dialect, event_id: str
) -> dict[str, Any]:
    """The ``session.update`` (GA) or ``transcription_session.update`` (Beta) message."""
    transcription = _transcription_block(model, settings)
    turn_detection = effective_turn_detection(model, settings)
    noise = {"type": settings.noise_reduction} if settings.noise_reduction else None
    include = [LOGPROBS_INCLUDE] if settings.include_logprobs else None
    if dialect == "beta":
        beta_session: dict[str, Any] = {
            "input_audio_format": "pcm16",
            "input_audio_transcription": transcription,
            "turn_detection": turn_detection,
        }
        if noise:
            beta_session["input_audio_noise_reduction"] = noise
        if include:
            beta_session["include"] = include
        return {"type": UPDATE_TYPE[dialect], "event_id": event_id, "session": beta_session}
    audio_input: dict[str, Any] = {
        "format": {"type": "audio/pcm", "rate": 24_000},
        "transcription": transcription,
        # Always present: omitting it keeps the server's default (server_vad), which the
        # VAD-less models reject and which is not what "manual" means.
        "turn_detection": turn_detection,
    }
    if noise:
        audio_input["noise_reduction"] = noise
    session: dict[str, Any] = {"type": "transcription", "audio": {"input": audio_input}}
    if include:
        session["include"] = include
    return {"type": UPDATE_TYPE[dialect], "event_id": event_id, "session": session}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_session_update(message: Mapping[str, Any]) -> tuple[SessionConfig, str | None]:
    """Server side: normalise either dialect's update. Returns ``(config, problem)``.

    ``problem`` is an OpenAI-style error message when the shape is wrong for its dialect
    (a GA update without ``session.type``, a GA update with Beta keys, ...).
    """
    session = _mapping(message.get("session"))
    beta = message.get("type") == UPDATE_TYPE["beta"]
    include = _strs(session.get("include"))
    if beta:
        transcription = _mapping(session.get("input_audio_transcription"))
        fmt = {v: k for k, v in _BETA_FORMATS.items()}.get(
            _str(session.get("input_audio_format")) or "pcm16", "audio/pcm"
        )
        td_raw, noise_raw, rate = (
            session.get("turn_detection"),
            session.get("input_audio_noise_reduction"),
            24_000,
        )
    else:
        if session.get("type") != "transcription":
            if "type" not in session:
                return SessionConfig(), "Missing required parameter: 'session.type'."
            return SessionConfig(), (
                "Passing a realtime session update to a transcription session is not allowed."
            )
        for legacy in ("input_audio_format", "input_audio_transcription", "turn_detection"):
            if legacy in session:
                return SessionConfig(), f"Unknown parameter: 'session.{legacy}'."
        audio_input = _mapping(_mapping(session.get("audio")).get("input"))
        transcription = _mapping(audio_input.get("transcription"))
        format_obj = _mapping(audio_input.get("format"))
        fmt = _str(format_obj.get("type")) or "audio/pcm"
        rate_value = format_obj.get("rate", 24_000)
        rate = rate_value if isinstance(rate_value, int) else 24_000
        td_raw = audio_input.get("turn_detection", {"type": "server_vad"})
        noise_raw = audio_input.get("noise_reduction")
    config = SessionConfig(
        model=_str(transcription.get("model")),
        language=_str(transcription.get("language")),
        languages=_strs(transcription.get("languages")),
        prompt=_str(transcription.get("prompt")),
        keywords=_strs(transcription.get("keywords")),
        delay=_str(transcription.get("delay")),
        turn_detection=dict(td_raw) if isinstance(td_raw, Mapping) else None,
        noise_reduction=_str(_mapping(noise_raw).get("type")),
        audio_format=fmt,
        sample_rate=rate,
        include_logprobs=LOGPROBS_INCLUDE in include,
    )
    return config, None


def session_object(config: SessionConfig, dialect: Dialect, session_id: str) -> dict[str, Any]:
    """The ``session`` object the server echoes in created/updated events."""
    transcription: dict[str, Any] | None = None
    if config.model is not None:
        transcription = {
            "model": config.model,
            "language": config.language,
            "prompt": config.prompt,
        }
        if config.languages:
            transcription["languages"] = list(config.languages)
    noise = {"type": config.noise_reduction} if config.noise_reduction else None
    if dialect == "beta":
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "input_audio_format": _BETA_FORMATS.get(config.audio_format, "pcm16"),
            "input_audio_transcription": transcription,
            "turn_detection": config.turn_detection,
            "input_audio_noise_reduction": noise,
        }
    fmt: dict[str, Any] = {"type": config.audio_format}
    if config.audio_format == "audio/pcm":
        fmt["rate"] = config.sample_rate
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "audio": {
            "input": {
                "format": fmt,
                "transcription": transcription,
                "turn_detection": config.turn_detection,
                "noise_reduction": noise,
            }
        },
        "include": [LOGPROBS_INCLUDE] if config.include_logprobs else None,
    }
