"""Transcription settings and the one table of per-model quirks.

Models differ in what they accept (protocol.md §1.14, §3.1): some refuse server VAD, some
take ``languages`` instead of ``language``, some refuse a prompt or keywords. Sending the wrong
field gets the whole ``session.update`` rejected, which on a fresh session means nothing is
ever transcribed. So the differences live in :data:`MODEL_CAPABILITIES` and nowhere else, and
settings are checked against it before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ._errors import ConfigurationError
from ._speech_detectors import DetectorName

__all__ = [
    "ModelCapabilities",
    "MODEL_CAPABILITIES",
    "capabilities_for",
    "STTModelSettings",
    "DEFAULT_TURN_DETECTION",
    "Delay",
    "ClientVAD",
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
class ClientVAD:
    """Turn detection on the client: ``STTModelSettings(turn_detection=ClientVAD())``.

    The default for models without server VAD (``gpt-live-transcribe``,
    ``gpt-realtime-whisper``); any model takes it, and then the server is sent
    ``turn_detection: null``. ``{"type": "client_vad", ...}`` with the same keys works too.
    You can still call ``session.commit()``: it ends the turn in progress, if there is one.

    Attributes:
        threshold: the speech probability (0..1) that counts as speech; higher needs
            louder, clearer speech. As ``server_vad``'s.
        prefix_padding_ms: audio before the detected start that is part of the turn, so
            the first word keeps its onset. As ``server_vad``'s.
        silence_duration_ms: how long a pause ends a turn. As ``server_vad``'s.
        min_speech_ms: speech shorter than this (a click, a cough) starts no turn.
        max_turn_ms: a turn this long is committed at its next quiet frame, so that
            someone who never pauses still gets transcripts.
        detector: ``"silero"`` (Silero VAD, the ``trio-stt[vad]`` extra), ``"energy"``
            (level above the background; no extra), or ``"auto"``: Silero where the extra
            is installed, else energy.
    """

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 100
    max_turn_ms: int = 30_000
    detector: DetectorName = "auto"

    def __post_init__(self) -> None:
        threshold = self.threshold
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not (0.0 < threshold < 1.0)
        ):
            raise ConfigurationError(f"ClientVAD.threshold must be in (0, 1); got {self.threshold}")
        for name in ("prefix_padding_ms", "silence_duration_ms", "min_speech_ms", "max_turn_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(
                    f"ClientVAD.{name} must be a whole number of ms >= 0; got {value!r}"
                )
        if self.silence_duration_ms < 100:
            raise ConfigurationError(
                "ClientVAD.silence_duration_ms must be at least 100 (a turn must hold 100 ms "
                f"to be committed); got {self.silence_duration_ms}"
            )
        if self.max_turn_ms < 1000:
            raise ConfigurationError(
                f"ClientVAD.max_turn_ms must be at least 1000; got {self.max_turn_ms}"
            )
        if self.detector not in ("auto", "silero", "energy"):
            raise ConfigurationError(
                f"ClientVAD.detector must be 'auto', 'silero' or 'energy'; got {self.detector!r}"
            )

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> ClientVAD:
        """From ``{"type": "client_vad", ...}``, naming any key it does not know."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known - {"type"})
        if unknown:
            raise ConfigurationError(
                f"client_vad does not take {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(known))}"
            )
        return cls(**{k: v for k, v in settings.items() if k != "type"})

    def as_mapping(self) -> dict[str, Any]:
        """The settings as ``{"type": "client_vad", ...}`` (for spans and logs)."""
        return {"type": "client_vad", **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True)
class STTModelSettings:
    """Settings for one transcription (file) or one session (realtime).

    The first four fields are the Agents SDK's. ``turn_detection`` says who ends turns:

    * the server: ``{"type": "server_vad", ...}`` or ``{"type": "semantic_vad", ...}``,
      passed through as the server expects it;
    * the client: a :class:`ClientVAD` (or ``{"type": "client_vad", ...}``), which the
      session runs on the audio it sends, committing each turn itself;
    * you: ``"manual"``; turns end when you call ``session.commit()`` or when the input
      ends;
    * ``None``, the default: ``semantic_vad`` for models with server VAD, and
      ``ClientVAD()`` for models without (``gpt-live-transcribe``, ``gpt-realtime-whisper``).

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
    turn_detection: Mapping[str, Any] | ClientVAD | Literal["manual"] | None = None
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
        if isinstance(td, Mapping) and td.get("type") == "client_vad":
            object.__setattr__(self, "turn_detection", ClientVAD.from_mapping(td))
        elif (
            td is not None
            and td != "manual"
            and not isinstance(td, ClientVAD)
            and (not isinstance(td, Mapping) or "type" not in td)
        ):
            raise ConfigurationError(
                "turn_detection must be a mapping with a 'type', a ClientVAD, 'manual' or "
                f"None; got {td!r}"
            )

    def client_vad(self, model: str) -> ClientVAD | None:
        """The turn detection the client runs for *model*, if any (see ``turn_detection``)."""
        td = self.turn_detection
        if isinstance(td, ClientVAD):
            return td
        if td is None and not capabilities_for(model).server_vad:
            return ClientVAD()
        return None

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
                f"{model} has no server VAD; leave turn_detection unset (the client detects "
                "turns, ClientVAD), or 'manual' to commit turns yourself"
            )
        return caps
