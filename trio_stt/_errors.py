"""Every exception trio-stt raises on purpose.

The tree:

```text
STTError
├── ConfigurationError (ValueError)      missing key, bad URL, key over cleartext
├── AudioFormatError (ValueError)        dtype, shape, NaN, empty, not a WAV file
├── UploadTooLargeError (ValueError)     body over 26,214,400 bytes, refused before sending
├── MissingDependencyError (ImportError) an optional extra (the server's) is not installed
├── ProtocolError                        abstract: somebody broke the realtime protocol
│   ├── LocalProtocolError               we (the caller) asked for something illegal
│   └── RemoteProtocolError              the peer sent malformed or impossible data
│       └── RealtimeProtocolError        ... over the realtime WebSocket (also below)
├── STTWebsocketConnectionError          the realtime session failed (reference name)
│   ├── STTWebsocketTimeoutError (TimeoutError)   an awaited server event never came
│   ├── RealtimeServerError              a fatal server "error" event (code, type, ...)
│   ├── RealtimeProtocolError            malformed or impossible realtime data (above)
│   └── WebSocketClosedError             the socket closed under us (code, reason)
└── APIError                             the REST call failed
    ├── APIConnectionError               no usable HTTP exchange (refused, reset, TLS)
    │   └── APITimeoutError (TimeoutError)
    └── APIStatusError                   an HTTP error status (status, code, request_id)
        ├── BadRequestError              400
        ├── AuthenticationError          401
        ├── PermissionDeniedError        403
        ├── NotFoundError                404
        ├── RequestTooLargeError         413
        ├── RateLimitError               429 (insufficient_quota included)
        └── InternalServerError          5xx
```

Transport exceptions (httpx2, trio-websocket, OSError) never escape: they are mapped at one
boundary each and chained with ``from`` so that the original stays on ``__cause__``.

No message built here ever contains the API key: the key lives only in the configuration
object, whose repr hides it; server messages that echo a key prefix are passed through
:func:`redact_secrets` first; and every exception leaving a public call has the configured
secrets masked along its whole chain (``trio_stt._secrets``, docs/security.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "STTError",
    "ConfigurationError",
    "AudioFormatError",
    "UploadTooLargeError",
    "MissingDependencyError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "STTWebsocketConnectionError",
    "STTWebsocketTimeoutError",
    "RealtimeProtocolError",
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
    "redact_secrets",
]

# OpenAI keys (sk-..., sk-proj-...), ephemeral secrets (ek_...) and bearer tokens. Servers
# echo a masked prefix of a bad key in 401 messages; we mask whatever survives of it.
KEY_SHAPE = re.compile(r"\b(sk-[A-Za-z0-9_\-*.]{4,}|ek_[A-Za-z0-9_\-]{4,})")


def redact_secrets(text: str) -> str:
    """Return *text* with anything shaped like an OpenAI key replaced by ``[redacted]``."""
    return KEY_SHAPE.sub("[redacted]", text)


def exception_leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside *exc*, with (nested) exception groups flattened away."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in exception_leaves(inner)]
    return [exc]


class STTError(Exception):
    """Base class of every error trio-stt raises deliberately."""


class ConfigurationError(STTError, ValueError):
    """The client configuration cannot work: missing key, malformed URL, unsafe transport."""


class AudioFormatError(STTError, ValueError):
    """Audio was not in a form we can send; the message says what was given and accepted."""


class MissingDependencyError(STTError, ImportError):
    """An optional package is missing; the message names it and the extra that provides it."""

    def __init__(
        self, package: str, purpose: str, extra: str = "server", *, hint: str | None = None
    ) -> None:
        how = hint or f"install it with: pip install 'trio-stt[{extra}]'"
        super().__init__(f"{purpose} needs the {package!r} package; {how}", name=package)


class UploadTooLargeError(STTError, ValueError):
    """The multipart body would exceed the API's 26,214,400-byte limit; nothing was sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the upload would be {size:,} bytes, over the {limit:,}-byte request limit; "
            "nothing was sent (split the audio or compress it)"
        )
        self.size = size
        self.limit = limit


class ProtocolError(STTError):
    """Somebody broke the realtime protocol. Abstract: raise a subclass."""

    def __new__(cls, *args: object, **kwargs: object) -> ProtocolError:
        if cls is ProtocolError:
            raise TypeError(
                "ProtocolError is abstract; raise LocalProtocolError or RemoteProtocolError"
            )
        return super().__new__(cls, *args, **kwargs)


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids in the current state."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed, oversized, or impossible in the current state."""


RECOVERABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})
"""Close codes after which a new connection may succeed (protocol.md §1.12: going away,
no status, abnormal, server error, restart, try again later, TLS failure)."""

RECOVERABLE_ERROR_CODES = frozenset(
    {"session_expired", "server_error", "internal_error", "overloaded", "rate_limit_exceeded"}
)
"""Error codes that end a connection but not the session (protocol.md §1.11): the time limit
(when rotation did not get there first) and the server's own trouble. A new connection is
tried under the reconnect policy; a refused key, configuration or quota is never retried."""

_REFUSALS = frozenset({400, 401, 403, 404})  # handshake statuses no retry will change


class STTWebsocketConnectionError(STTError):
    """The realtime session failed. The name is the Agents SDK's, kept for drop-in use.

    ``status_code`` is the HTTP status when the server refused the WebSocket handshake.
    :attr:`recoverable` says whether a new connection may do better.
    """

    status_code: int | None = None

    @property
    def recoverable(self) -> bool:
        """Whether a new connection may succeed where this one failed: the network or the
        server's process failed, not our key, our configuration or the protocol. The
        session's reconnect policy retries exactly these."""
        return self.status_code not in _REFUSALS


class RealtimeProtocolError(RemoteProtocolError, STTWebsocketConnectionError):
    """The realtime server sent something malformed, oversized or impossible.

    Both a :class:`RemoteProtocolError` and an :class:`STTWebsocketConnectionError`, so code
    written for the Agents SDK (which catches the latter for every session failure) still
    catches it. Never :attr:`recoverable`: another connection would hear the same.
    """

    recoverable = False


TimeoutKind = Literal["connect", "setup", "inactivity", "keepalive"]


class STTWebsocketTimeoutError(STTWebsocketConnectionError, TimeoutError):
    """A server event we were waiting for did not arrive in time.

    ``awaited`` names it (``"session.created"``, ``"session.updated"``, ``"server events"``).
    ``kind`` says which wait it was: ``"connect"`` (the handshake), ``"setup"``
    (``session.created`` or ``session.updated``), ``"inactivity"`` (the server owed us a
    commit or a transcript and fell silent) or ``"keepalive"`` (no pong: the connection
    died without closing). All but an inactivity timeout are :attr:`recoverable`: a server
    that holds our audio and says nothing would do the same on a new connection.
    """

    def __init__(self, awaited: str, seconds: float, *, kind: TimeoutKind = "setup") -> None:
        super().__init__(f"timed out after {seconds:g} s waiting for {awaited}")
        self.awaited = awaited
        self.seconds = seconds
        self.kind: TimeoutKind = kind

    @property
    def recoverable(self) -> bool:
        return self.kind != "inactivity"


class RealtimeServerError(STTWebsocketConnectionError):
    """The server sent an ``error`` event that ends the session.

    Recoverable errors never raise; they arrive as events on ``session.events()``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        message = redact_secrets(message)
        label = code or type or "error"
        super().__init__(f"server error {label}: {message}")
        self.message = message
        self.code = code
        self.type = type
        self.param = param
        self.event_id = event_id

    @property
    def recoverable(self) -> bool:
        return self.code in RECOVERABLE_ERROR_CODES


class WebSocketClosedError(STTWebsocketConnectionError):
    """The WebSocket closed while the session still needed it."""

    def __init__(self, code: int | None, reason: str | None, *, detail: str = "") -> None:
        text = f"websocket closed (code {code}" + (f", reason {reason!r}" if reason else "") + ")"
        super().__init__(text + (f": {detail}" if detail else ""))
        self.code = code
        self.reason = reason

    @property
    def recoverable(self) -> bool:
        return self.code in RECOVERABLE_CLOSE_CODES


class ReconnectFailedError(STTWebsocketConnectionError):
    """The connection was lost and could not be made again; ``__cause__`` is the last
    failure, ``attempts`` how many connections were tried."""

    def __init__(self, attempts: int, seconds: float, last: BaseException) -> None:
        super().__init__(
            f"the connection was lost and {attempts} attempt(s) to reconnect over "
            f"{seconds:.1f} s failed; the last: {last}"
        )
        self.attempts = attempts

    recoverable = False


class APIError(STTError):
    """A REST transcription call failed."""


class APIConnectionError(APIError):
    """No usable HTTP exchange happened: refused, reset, DNS or TLS failure."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """The HTTP exchange did not finish within the configured timeout."""


class APIStatusError(APIError):
    """The server answered with an error status.

    Attributes: ``status_code``, ``code`` and ``type`` from the error body (may be ``None``),
    ``message``, ``param`` and ``request_id`` (the ``x-request-id`` header, for support).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        message = redact_secrets(message)
        suffix = f" (request id {request_id})" if request_id else ""
        label = f" {code}" if code else ""
        super().__init__(f"HTTP {status_code}{label}: {message}{suffix}")
        self.message = message
        self.status_code = status_code
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id


class BadRequestError(APIStatusError):
    """400: the request itself is wrong (format, language code, parameter)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model, project or region."""


class NotFoundError(APIStatusError):
    """404: unknown model or path."""


class RequestTooLargeError(APIStatusError):
    """413: the server refused the body as too large."""


class RateLimitError(APIStatusError):
    """429: too many requests, or (``code == "insufficient_quota"``) no credit left."""


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The most specific :class:`APIStatusError` subclass for *status_code*."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status_code, APIStatusError)


def recoverable(exc: BaseException) -> bool:
    """Whether a realtime session may try a new connection after *exc*: one of ours that
    says so (:attr:`STTWebsocketConnectionError.recoverable`), or a broken socket."""
    if isinstance(exc, STTWebsocketConnectionError):
        return exc.recoverable
    return isinstance(exc, OSError)


# When several tasks fail at once, the most telling failure is the one reported.
_PRIORITY = (ReconnectFailedError, RealtimeServerError, RealtimeProtocolError,
             STTWebsocketTimeoutError, WebSocketClosedError, STTError)  # fmt: skip


def choose_session_failure(failures: Sequence[BaseException]) -> BaseException:
    """The one exception a failed realtime session raises, when several tasks failed at once:
    ``KeyboardInterrupt`` and ``SystemExit`` as they are, else the most telling of ours, else
    an internal error that keeps the first failure as its cause."""
    for exc in failures:
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: as they are
            return exc
    for kind in _PRIORITY:
        for exc in failures:
            if isinstance(exc, kind):
                return exc
    internal = STTWebsocketConnectionError(
        f"internal error in the session: {type(failures[0]).__name__}: {failures[0]}"
    )
    internal.__cause__ = failures[0]
    return internal
