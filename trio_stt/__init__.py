"""trio-stt: OpenAI speech-to-text for trio.

File transcription goes over HTTP (:meth:`OpenAISTTModel.transcribe_file`); live transcription
goes over the Realtime WebSocket (:meth:`OpenAISTTModel.create_session`), supervised by a
nursery so that nothing outlives the ``async with`` that opened it.
"""

from __future__ import annotations

from ._audio_files import DecodedAudio as DecodedAudio
from ._audio_files import read_audio as read_audio
from ._audio_input import AudioInput as AudioInput
from ._client_secrets import ClientSecret as ClientSecret
from ._config import ClientConfig as ClientConfig
from ._errors import (
    APIConnectionError as APIConnectionError,
)
from ._errors import (
    APIError as APIError,
)
from ._errors import (
    APIStatusError as APIStatusError,
)
from ._errors import (
    APITimeoutError as APITimeoutError,
)
from ._errors import (
    AudioFormatError as AudioFormatError,
)
from ._errors import (
    AuthenticationError as AuthenticationError,
)
from ._errors import (
    BadRequestError as BadRequestError,
)
from ._errors import (
    ConfigurationError as ConfigurationError,
)
from ._errors import (
    InternalServerError as InternalServerError,
)
from ._errors import (
    LocalProtocolError as LocalProtocolError,
)
from ._errors import (
    MissingDependencyError as MissingDependencyError,
)
from ._errors import (
    NotFoundError as NotFoundError,
)
from ._errors import (
    PermissionDeniedError as PermissionDeniedError,
)
from ._errors import (
    ProtocolError as ProtocolError,
)
from ._errors import (
    RateLimitError as RateLimitError,
)
from ._errors import (
    RealtimeProtocolError as RealtimeProtocolError,
)
from ._errors import (
    RealtimeServerError as RealtimeServerError,
)
from ._errors import (
    ReconnectFailedError as ReconnectFailedError,
)
from ._errors import (
    RemoteProtocolError as RemoteProtocolError,
)
from ._errors import (
    RequestTooLargeError as RequestTooLargeError,
)
from ._errors import (
    STTError as STTError,
)
from ._errors import (
    STTWebsocketConnectionError as STTWebsocketConnectionError,
)
from ._errors import (
    STTWebsocketTimeoutError as STTWebsocketTimeoutError,
)
from ._errors import (
    UploadTooLargeError as UploadTooLargeError,
)
from ._errors import (
    WebSocketClosedError as WebSocketClosedError,
)
from ._long_audio import PieceError as PieceError
from ._long_audio import SplitOptions as SplitOptions
from ._long_audio import SplitProgress as SplitProgress
from ._microphone import MicrophoneStats as MicrophoneStats
from ._microphone import feed_from_microphone as feed_from_microphone
from ._microphone import open_microphone as open_microphone
from ._model import OpenAISTTModel as OpenAISTTModel
from ._model import TranscriptionStream as TranscriptionStream
from ._playback import feed_from_file as feed_from_file
from ._protocol import (
    AudioCleared as AudioCleared,
)
from ._protocol import (
    AudioCommitted as AudioCommitted,
)
from ._protocol import (
    AudioLost as AudioLost,
)
from ._protocol import (
    ConversationItem as ConversationItem,
)
from ._protocol import (
    RealtimeEvent as RealtimeEvent,
)
from ._protocol import (
    Reconnected as Reconnected,
)
from ._protocol import (
    Reconnecting as Reconnecting,
)
from ._protocol import (
    Rotated as Rotated,
)
from ._protocol import (
    ServerError as ServerError,
)
from ._protocol import (
    SessionCreated as SessionCreated,
)
from ._protocol import (
    SessionUpdated as SessionUpdated,
)
from ._protocol import (
    SpeechStarted as SpeechStarted,
)
from ._protocol import (
    SpeechStopped as SpeechStopped,
)
from ._protocol import (
    TranscriptionCompleted as TranscriptionCompleted,
)
from ._protocol import (
    TranscriptionDelta as TranscriptionDelta,
)
from ._protocol import (
    TranscriptionFailed as TranscriptionFailed,
)
from ._protocol import (
    Turn as Turn,
)
from ._protocol import (
    UnknownEvent as UnknownEvent,
)
from ._results import (
    DurationUsage as DurationUsage,
)
from ._results import (
    Logprob as Logprob,
)
from ._results import (
    TokenUsage as TokenUsage,
)
from ._results import (
    Transcription as Transcription,
)
from ._results import (
    TranscriptionSegment as TranscriptionSegment,
)
from ._results import (
    TranscriptionWord as TranscriptionWord,
)
from ._results import (
    TranscriptTextDelta as TranscriptTextDelta,
)
from ._results import (
    TranscriptTextDone as TranscriptTextDone,
)
from ._results import (
    TranscriptTextSegment as TranscriptTextSegment,
)
from ._secrets import RedactedException as RedactedException
from ._session import (
    OpenAISTTTranscriptionSession as OpenAISTTTranscriptionSession,
)
from ._session import (
    SessionOptions as SessionOptions,
)
from ._session import (
    SessionStatistics as SessionStatistics,
)
from ._session import (
    TurnStream as TurnStream,
)
from ._session_options import ReconnectPolicy as ReconnectPolicy
from ._session_options import RotationPolicy as RotationPolicy
from ._settings import (
    MODEL_CAPABILITIES as MODEL_CAPABILITIES,
)
from ._settings import (
    ClientVAD as ClientVAD,
)
from ._settings import (
    ModelCapabilities as ModelCapabilities,
)
from ._settings import (
    STTModelSettings as STTModelSettings,
)
from ._streamed_input import StreamedAudioInput as StreamedAudioInput
from ._version import __version__ as __version__

__all__ = [
    "__version__",
    # models and settings
    "OpenAISTTModel",
    "STTModelSettings",
    "ClientConfig",
    "ClientSecret",
    "ModelCapabilities",
    "MODEL_CAPABILITIES",
    # live transcription
    "OpenAISTTTranscriptionSession",
    "SessionOptions",
    "ReconnectPolicy",
    "RotationPolicy",
    "SessionStatistics",
    "ClientVAD",
    "StreamedAudioInput",
    "feed_from_file",
    "feed_from_microphone",
    "open_microphone",
    "MicrophoneStats",
    # realtime events
    "RealtimeEvent",
    "SessionCreated",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "AudioCommitted",
    "AudioCleared",
    "ConversationItem",
    "TranscriptionDelta",
    "TranscriptionCompleted",
    "TranscriptionFailed",
    "ServerError",
    "UnknownEvent",
    "Turn",
    "TurnStream",
    "Reconnecting",
    "Reconnected",
    "AudioLost",
    "Rotated",
    # audio
    "AudioInput",
    "read_audio",
    "DecodedAudio",
    # long files
    "SplitOptions",
    "SplitProgress",
    "PieceError",
    # file transcription results
    "Transcription",
    "TranscriptionSegment",
    "TranscriptionWord",
    "TranscriptionStream",
    "TranscriptTextDelta",
    "TranscriptTextSegment",
    "TranscriptTextDone",
    "DurationUsage",
    "TokenUsage",
    "Logprob",
    # errors
    "STTError",
    "ConfigurationError",
    "AudioFormatError",
    "UploadTooLargeError",
    "MissingDependencyError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "RealtimeProtocolError",
    "STTWebsocketConnectionError",
    "STTWebsocketTimeoutError",
    "RealtimeServerError",
    "WebSocketClosedError",
    "ReconnectFailedError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RequestTooLargeError",
    "RateLimitError",
    "InternalServerError",
    "RedactedException",
]
