"""An OpenAI-compatible speech-to-text server that runs offline.

``POST /v1/audio/transcriptions`` and ``/v1/realtime?intent=transcription`` on one port, served
by hypercorn's trio worker on 127.0.0.1 by default, backed by a pluggable :class:`Recognizer`.
Needs the ``server`` extra: ``pip install 'trio-stt[server]'``.
"""

from __future__ import annotations

from ._app import RecordedRequest, RestFault, ServerConfig, STTServerApp
from ._pocketsphinx import PocketSphinxRecognizer
from ._recognizers import Recognition, RecognizedWord, Recognizer, ScriptedRecognizer
from ._serve import RunningServer, open_server, serve
from ._whisper import WhisperRecognizer

__all__ = [
    "STTServerApp",
    "ServerConfig",
    "RestFault",
    "RecordedRequest",
    "Recognizer",
    "Recognition",
    "RecognizedWord",
    "ScriptedRecognizer",
    "PocketSphinxRecognizer",
    "WhisperRecognizer",
    "RunningServer",
    "open_server",
    "serve",
]
