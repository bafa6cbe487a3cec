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

from .._settings import ClientVAD, STTModelSettings, capabilities_for
from ._events import SessionConfig
from ._wire import PCM, WIRE_FORMATS, WireFormat

__all__ = [
    "Dialect",
    "DIALECTS",
    "handshake_headers",
    "build_session_update",
    "build_barrier",
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

_BETA_FORMATS: dict[str, str] = {f.name: f.beta_name for f in WIRE_FORMATS.values()}


def handshake_headers(dialect: Dialect) -> list[tuple[str, str]]:
    """Extra handshake headers. GA must *not* send ``OpenAI-Beta`` (close 4000 if it does)."""
    return [("OpenAI-Beta", "realtime=v1")] if dialect == "beta" else []


def effective_turn_detection(model: str, settings: STTModelSettings) -> Mapping[str, Any] | None:
    """What we ask for: the settings' value, else ``semantic_vad`` (the Agents SDK's default),
    except ``None`` (an explicit JSON null) for models that refuse server VAD."""
    detection = settings.turn_detection
    if detection == "manual" or isinstance(detection, ClientVAD):
        return None  # nobody, or the client, ends turns: the server must not
    if detection is not None:
        return dict(detection)
    return {"type": "semantic_vad"} if capabilities_for(model).server_vad else None


def _transcription_block(
    model: str, settings: STTModelSettings, wire_model: str | None
) -> dict[str, Any]:
    caps = capabilities_for(model)
    block: dict[str, Any] = {"model": wire_model or model}
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
    model: str,
    settings: STTModelSettings,
    dialect: Dialect,
    event_id: str,
    audio_format: WireFormat = PCM,
    *,
    wire_model: str | None = None,
) -> dict[str, Any]:
    """The ``session.update`` (GA) or ``transcription_session.update`` (Beta) message.

    *model* decides what is sent; *wire_model* is the name it is sent under, when the
    server knows it by another (an Azure deployment)."""
    transcription = _transcription_block(model, settings, wire_model)
    turn_detection = effective_turn_detection(model, settings)
    noise = {"type": settings.noise_reduction} if settings.noise_reduction else None
    include = [LOGPROBS_INCLUDE] if settings.include_logprobs else None
    if dialect == "beta":
        beta_session: dict[str, Any] = {
            "input_audio_format": audio_format.beta_name,
            "input_audio_transcription": transcription,
            "turn_detection": turn_detection,
        }
        if noise:
            beta_session["input_audio_noise_reduction"] = noise
        if include:
            beta_session["include"] = include
        return {"type": UPDATE_TYPE[dialect], "event_id": event_id, "session": beta_session}
    audio_input: dict[str, Any] = {
        "format": audio_format.session_format(),
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


def build_barrier(dialect: Dialect, event_id: str) -> str:
    """An update that changes nothing, sent for its answer: the server handles a connection's
    events in order, so when ``session.updated`` comes back, its VAD has heard every append
    sent before it. ``session.type`` is the one field a GA update may not leave out."""
    session = '{"type":"transcription"}' if dialect == "ga" else "{}"
    return f'{{"type":"{UPDATE_TYPE[dialect]}","event_id":"{event_id}","session":{session}}}'


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _patched(base: Any, block: Mapping[str, Any], key: str) -> Any:
    """A patch changes only the fields it names; ``null`` clears one."""
    return block.get(key, base)


def parse_session_update(
    message: Mapping[str, Any], base: SessionConfig | None = None
) -> tuple[SessionConfig, str | None]:
    """Server side: apply either dialect's update to *base*. Returns ``(config, problem)``.

    Updates are patches (protocol.md §1.5): what the update leaves out keeps its value in
    *base*, so an update that names nothing but ``session.type`` changes nothing. ``problem``
    is an OpenAI-style error message when the shape is wrong for its dialect (a GA update
    without ``session.type``, a GA update with Beta keys, ...).
    """
    base = base or SessionConfig()
    session = _mapping(message.get("session"))
    beta = message.get("type") == UPDATE_TYPE["beta"]
    if beta:
        audio_input: Mapping[str, Any] = session
        names = {
            "transcription": "input_audio_transcription",
            "noise_reduction": "input_audio_noise_reduction",
        }
    else:
        if session.get("type") != "transcription":
            if "type" not in session:
                return base, "Missing required parameter: 'session.type'."
            return base, (
                "Passing a realtime session update to a transcription session is not allowed."
            )
        for legacy in ("input_audio_format", "input_audio_transcription", "turn_detection"):
            if legacy in session:
                return base, f"Unknown parameter: 'session.{legacy}'."
        audio_input = _mapping(_mapping(session.get("audio")).get("input"))
        names = {}
    fmt, rate = base.audio_format, base.sample_rate
    if beta and "input_audio_format" in session:
        beta_format = _str(session.get("input_audio_format")) or "pcm16"
        fmt = {v: k for k, v in _BETA_FORMATS.items()}.get(beta_format, "audio/pcm")
    elif "format" in audio_input:
        format_obj = _mapping(audio_input.get("format"))
        fmt = _str(format_obj.get("type")) or "audio/pcm"
        rate_value = format_obj.get("rate", 24_000)
        rate = rate_value if isinstance(rate_value, int) else 24_000
    transcription_key = names.get("transcription", "transcription")
    model, language, languages = base.model, base.language, base.languages
    prompt, keywords, delay = base.prompt, base.keywords, base.delay
    if transcription_key in audio_input:
        block = audio_input[transcription_key]
        if isinstance(block, Mapping):
            model = _str(_patched(model, block, "model"))
            language = _str(_patched(language, block, "language"))
            languages = _strs(_patched(list(languages), block, "languages"))
            prompt = _str(_patched(prompt, block, "prompt"))
            keywords = _strs(_patched(list(keywords), block, "keywords"))
            delay = _str(_patched(delay, block, "delay"))
        else:  # null: no transcription at all, as on a fresh session
            model, language, languages, prompt, keywords, delay = None, None, (), None, (), None
    turn_detection = base.turn_detection
    if "turn_detection" in audio_input:
        raw = audio_input["turn_detection"]
        turn_detection = dict(raw) if isinstance(raw, Mapping) else None
    noise = base.noise_reduction
    noise_key = names.get("noise_reduction", "noise_reduction")
    if noise_key in audio_input:
        noise = _str(_mapping(audio_input[noise_key]).get("type"))
    include_logprobs = base.include_logprobs
    if "include" in session:
        include_logprobs = LOGPROBS_INCLUDE in _strs(session.get("include"))
    config = SessionConfig(
        model=model,
        language=language,
        languages=languages,
        prompt=prompt,
        keywords=keywords,
        delay=delay,
        turn_detection=turn_detection,
        noise_reduction=noise,
        audio_format=fmt,
        sample_rate=rate,
        include_logprobs=include_logprobs,
    )
    return config, None


def session_object(
    config: SessionConfig, dialect: Dialect, session_id: str, expires_at: int | None = None
) -> dict[str, Any]:
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
        "expires_at": expires_at,
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
