"""PocketSphinx behind the server: real offline recognition with the model its wheel carries.

PocketSphinx's en-US model is trained on 16 kHz speech, so audio arrives at whatever rate the
client sent (24 kHz for realtime) and is resampled here with soxr before decoding. Decoding a
few seconds takes a few hundred milliseconds of CPU, holding the GIL, which is why the
recognizer says ``blocking = True`` and gives a ``recipe``: the server runs it in worker
processes and keeps serving other sessions.

A ``Decoder`` is not safe to share between threads, and building one loads the model (a fraction
of a second). So decoders are pooled: a call takes an idle one or builds a new one, and puts it
back when done. The pool grows to the number of recognitions that ever ran at once, no further
(one, in a worker process).
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from .._audio import resample_int16
from .._errors import MissingDependencyError
from ._recognizers import Recognition, RecognizedWord
from ._vad import voiced_spans
from ._workers import Recipe

__all__ = ["PocketSphinxRecognizer"]

MODEL_RATE = 16_000
FRAMES_PER_SECOND = 100  # PocketSphinx reports word times in 10 ms frames
# Pruning that makes decoding 1.6x faster (a real-time factor of 0.152, from 0.237) at the
# same word error rate on the bundled recordings (0.019): at most 2000 active HMMs a frame.
# Tighter (1500, or topn=2 as well) was faster still, but lost words of G.711 calls.
# Pass other values to the constructor to change them.
_SPEED = {"maxhmmpf": 2000}
_FILLER = re.compile(r"^(<.*>|\[.*\])$")  # <s>, </s>, <sil>, [NOISE], ...
_ALTERNATE = re.compile(r"\(\d+\)$")  # "read(2)": the second pronunciation of "read"


def _import_decoder() -> Any:
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise MissingDependencyError("pocketsphinx", "the PocketSphinx recognizer") from exc
    return Decoder


class PocketSphinxRecognizer:
    """Recognizes English speech offline with PocketSphinx's bundled en-US model.

    Accuracy is good on clear, read speech (a word error rate around 0.1 on flite's voices)
    and poor on noisy or synthetic-sounding audio. Word timings come from the decoder's
    segmentation; ``logprob`` is the log of the word's posterior probability.

    Raises :class:`~trio_stt.MissingDependencyError` (an :class:`ImportError` that says how
    to install it) when the package is missing: at construction, not at the first request.
    """

    blocking = True

    def __init__(self, **decoder_options: Any) -> None:
        self._decoder_class = _import_decoder()
        self.recipe = Recipe(PocketSphinxRecognizer, tuple(sorted(decoder_options.items())))
        self._options = {**_SPEED, "samprate": MODEL_RATE, "loglevel": "FATAL", **decoder_options}
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<PocketSphinxRecognizer decoders={len(self._idle)}>"

    def warm_up(self) -> None:
        """Build one decoder now, so the first request does not pay for loading the model."""
        self._release(self._acquire())

    def recognize(self, samples: npt.NDArray[np.int16], sample_rate: int) -> Recognition:
        """Decode mono int16 audio at any rate as one utterance (blocking; call from a thread)."""
        duration = len(samples) / sample_rate if sample_rate else 0.0
        if not len(samples):
            return Recognition(text="", duration=0.0)
        audio = resample_int16(samples, sample_rate, MODEL_RATE)
        decoder = self._acquire()
        words: list[RecognizedWord] = []
        try:
            for start, end in voiced_spans(audio, MODEL_RATE):
                decoder.start_utt()
                decoder.process_raw(audio[start:end].astype("<i2").tobytes(), full_utt=True)
                decoder.end_utt()
                words += _words(decoder.seg(), offset=start / MODEL_RATE)
        finally:
            self._release(decoder)
        return Recognition(
            text=" ".join(w.word for w in words), words=tuple(words), duration=round(duration, 3)
        )

    def _acquire(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._decoder_class(**self._options)

    def _release(self, decoder: Any) -> None:
        with self._lock:
            self._idle.append(decoder)


def _words(segments: Any, offset: float) -> list[RecognizedWord]:
    words = []
    for seg in segments:
        if _FILLER.match(seg.word):
            continue
        probability = min(max(float(seg.prob), 1e-10), 1.0)
        words.append(
            RecognizedWord(
                word=_ALTERNATE.sub("", seg.word),
                start=round(offset + seg.start_frame / FRAMES_PER_SECOND, 3),
                end=round(offset + (seg.end_frame + 1) / FRAMES_PER_SECOND, 3),
                logprob=round(math.log(probability), 4),
            )
        )
    return words
