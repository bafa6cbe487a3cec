"""Transcription settings and the one table of per-model quirks.

Models differ in what they accept (protocol.md §1.14, §3.1): some refuse server VAD, some
take ``languages`` instead of ``language``, some refuse a prompt or keywords. Sending the wrong
field gets the whole ``session.update`` rejected, which on a fresh session means nothing is
ever transcribed. So the differences live in :data:`MODEL_CAPABILITIES` and nowhere else, and
settings are checked against it before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._errors import ConfigurationError

__all__ = [
    "ModelCapabilities",
    "MODEL_CAPABILITIES",
    "capabilities_for",
    "STTModelSettings",
    "DEFAULT_TURN_DETECTION",
    "Delay",
]

Delay = Literal["minimal", "low", "medium", "high", "xhigh"]

DEFAULT_TURN_DETECTION: Mapping[str, Any] = {"type": "semantic_vad"}
"""What the Agents SDK sends when turn detection is unset; kept for parity."""


@dataclass(frozen=True)
class ModelCapabilities:
    """What one model accepts. Unknown models get :data:`PERMISSIVE`."""

    server_vad: bool = True
    languages_list: bool = False  # takes `languages: [...]` rather than `language`
    prompt: bool = True
    keywords: bool = False
    delay: bool = False
    logprobs: bool = False
    realtime: bool = True
    rest: bool = True
    rest_streaming: bool = True
    rest_formats: frozenset[str] = frozenset({"json", "text"})
    token_billed: bool = False  # usage in tokens rather than seconds
    detects_languages: bool = False  # answers carry the `languages` it heard
    max_seconds: float | None = None  # longest file accepted over REST, where one is known


_GPT_4O_MAX_SECONDS = 1400.0  # "... longer than 1400 seconds which is the maximum" (§3.4)

_WHISPER_FORMATS = frozenset({"json", "text", "srt", "vtt", "verbose_json"})

MODEL_CAPABILITIES: Mapping[str, ModelCapabilities] = {
    "gpt-live-transcribe": ModelCapabilities(
        server_vad=False, languages_list=True, keywords=True, delay=True, rest=False
    ),
    "gpt-realtime-whisper": ModelCapabilities(
        server_vad=False, prompt=False, delay=True, rest=False
    ),
    "gpt-transcribe": ModelCapabilities(languages_list=True, keywords=True, detects_languages=True),
    "gpt-4o-transcribe": ModelCapabilities(
        logprobs=True,
        rest_formats=frozenset({"json"}),
        token_billed=True,
        max_seconds=_GPT_4O_MAX_SECONDS,
    ),
    "gpt-4o-mini-transcribe": ModelCapabilities(
        logprobs=True,
        rest_formats=frozenset({"json"}),
        token_billed=True,
        max_seconds=_GPT_4O_MAX_SECONDS,
    ),
    "gpt-4o-mini-transcribe-2025-12-15": ModelCapabilities(
        logprobs=True,
        rest_formats=frozenset({"json"}),
        token_billed=True,
        max_seconds=_GPT_4O_MAX_SECONDS,
    ),
    "gpt-4o-transcribe-diarize": ModelCapabilities(
        realtime=False,
        prompt=False,
        rest_formats=frozenset({"json", "text", "diarized_json"}),
        max_seconds=_GPT_4O_MAX_SECONDS,
    ),
    "whisper-1": ModelCapabilities(rest_streaming=False, rest_formats=_WHISPER_FORMATS),
}

PERMISSIVE = ModelCapabilities(
    keywords=True,
    rest_formats=_WHISPER_FORMATS | {"diarized_json"},
    logprobs=True,
)
"""For models we do not know (local servers, future models): send what the user asked."""


def capabilities_for(model: str) -> ModelCapabilities:
    """The capabilities of *model*, or the permissive default for unknown names."""
    return MODEL_CAPABILITIES.get(model, PERMISSIVE)


@dataclass(frozen=True)
class STTModelSettings:
    """Settings for one transcription (file) or one session (realtime).

    The first four fields are the Agents SDK's. ``turn_detection`` is passed through as the
    server expects it (``{"type": "server_vad", ...}`` or ``{"type": "semantic_vad", ...}``);
    ``None`` means the default (``semantic_vad``, or manual turns for models without VAD) and
    ``"manual"`` means no server VAD at all: turns end when you call ``session.commit()`` or
    when the input ends.

    Attributes:
        languages: several expected languages (gpt-transcribe, gpt-live-transcribe).
        keywords: literal terms to favour; none may contain ``<``, ``>``, CR or LF.
        delay: latency/accuracy trade-off for the streaming models.
        noise_reduction: ``"near_field"`` or ``"far_field"``; off by default.
        include_logprobs: ask for token log-probabilities where the model offers them.
    """

    prompt: str | None = None
    language: str | None = None
    temperature: float | None = None
    turn_detection: Mapping[str, Any] | Literal["manual"] | None = None
    languages: Sequence[str] | None = None
    keywords: Sequence[str] | None = None
    delay: Delay | None = None
    noise_reduction: Literal["near_field", "far_field"] | None = None
    include_logprobs: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.language is not None and self.languages is not None:
            raise ConfigurationError("set language or languages, not both (the API rejects both)")
        for word in self.keywords or ():
            if any(c in word for c in "<>\r\n"):
                raise ConfigurationError(
                    f"keyword {word!r} contains '<', '>', CR or LF, which the API rejects"
                )
        if self.temperature is not None and not 0.0 <= self.temperature <= 1.0:
            raise ConfigurationError(f"temperature must be in [0, 1]; got {self.temperature}")
        td = self.turn_detection
        if td is not None and td != "manual" and (not isinstance(td, Mapping) or "type" not in td):
            raise ConfigurationError(
                f"turn_detection must be a mapping with a 'type', 'manual' or None; got {td!r}"
            )

    def language_list(self) -> list[str] | None:
        """Languages as a list, merging the single ``language`` hint."""
        if self.languages is not None:
            return list(self.languages)
        return [self.language] if self.language else None

    def check_for(self, model: str, *, realtime: bool) -> ModelCapabilities:
        """Raise :class:`ConfigurationError` for settings *model* is known to reject."""
        caps = capabilities_for(model)
        where = "realtime" if realtime else "file"
        if realtime and not caps.realtime:
            raise ConfigurationError(f"{model} does not support realtime transcription")
        if not realtime and not caps.rest:
            raise ConfigurationError(
                f"{model} is realtime-only; use create_session() or a file model"
            )
        if self.keywords and not caps.keywords:
            raise ConfigurationError(f"{model} does not accept keywords ({where})")
        if self.prompt and not caps.prompt:
            raise ConfigurationError(f"{model} does not accept a prompt ({where})")
        if self.delay and realtime and not caps.delay:
            raise ConfigurationError(f"{model} does not accept delay")
        if realtime and not caps.server_vad and isinstance(self.turn_detection, Mapping):
            raise ConfigurationError(
                f"{model} does not support turn detection; leave turn_detection unset or "
                "'manual' and commit turns yourself (end of input commits the last one)"
            )
        return caps
