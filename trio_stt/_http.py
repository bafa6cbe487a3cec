"""The HTTP boundary: the only module that imports httpx2.

httpx has had no release since December 2024; httpx2 is its maintained continuation with the
same API (openai-python 3 moved to it), and it runs natively under trio. Keeping it in this one
module means the rest of trio-stt never sees an httpx2 type or exception: transport errors are
mapped here to :class:`~trio_stt.APIConnectionError` / :class:`~trio_stt.APITimeoutError`,
error statuses to the :class:`~trio_stt.APIStatusError` family.

Retries follow openai-python's policy (protocol.md §3.5): honour ``x-should-retry``; retry
408, 409, 429 and 5xx and connection failures - but never ``insufficient_quota``, which no
amount of waiting fixes; wait ``retry-after-ms`` or ``retry-after`` when the server gives one
(up to 120 s, beyond that we give up), else 0.5 s x 2^n capped at 8 s with jitter.
"""

from __future__ import annotations

import codecs
import email.utils
import logging
import math
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
import trio

from ._config import ClientConfig
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    redact_secrets,
    status_error_class,
)
from ._rest import parse_error_body

logger = logging.getLogger("trio_stt")

__all__ = ["HTTPResult", "HTTPSession", "retry_delay"]

MAX_RETRY_AFTER = 120.0


@dataclass(frozen=True)
class HTTPResult:
    status_code: int
    headers: Mapping[str, str]
    text: str

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")


@contextmanager
def _map_transport_errors() -> Iterator[None]:
    try:
        yield
    except httpx2.TimeoutException as exc:
        raise APITimeoutError(f"HTTP request timed out ({type(exc).__name__})") from exc
    except httpx2.ConnectError as exc:
        tls = _tls_failure(exc)
        if tls is not None:
            raise APIConnectionError(
                f"TLS with the server{_where(exc)} failed: {tls} (for a server with a "
                "certificate of your own CA, pass ClientConfig(ssl_context=...) trusting it)"
            ) from exc
        raise APIConnectionError(
            f"cannot connect{_where(exc)}: {redact_secrets(str(exc))} (is a server running there?)"
        ) from exc
    except (httpx2.TransportError, httpx2.StreamError) as exc:
        raise APIConnectionError(
            f"HTTP connection failed: {type(exc).__name__}: {redact_secrets(str(exc))}"
        ) from exc


def _tls_failure(exc: BaseException) -> str | None:
    """The TLS reason behind a failed connection (an untrusted certificate), if that was it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return str(getattr(seen, "verify_message", None) or seen.reason or seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _where(exc: httpx2.RequestError) -> str:
    """' to host:port' of the request that failed, when httpx2 kept it."""
    try:
        url = exc.request.url
    except RuntimeError:  # raised without a request
        return ""
    return f" to {url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def _parse_retry_after(headers: Mapping[str, str]) -> float | None:
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        return None if parsed is None else parsed.timestamp() - time.time()


def retry_delay(attempt: int, headers: Mapping[str, str] | None = None) -> float | None:
    """Seconds to wait before retry number *attempt* (0-based); ``None`` means do not retry."""
    if headers is not None:
        told = _parse_retry_after(headers)
        if told is not None:
            if told > MAX_RETRY_AFTER:
                return None
            if told > 0:
                return told
    base = min(0.5 * 2.0**attempt, 8.0)
    return base * (1.0 - 0.25 * random.random())


def _should_retry(result: HTTPResult, error: APIStatusError) -> bool:
    verdict = result.headers.get("x-should-retry")
    if verdict == "true":
        return True
    if verdict == "false" or error.code == "insufficient_quota":
        return False
    return result.status_code in (408, 409, 429) or result.status_code >= 500


def _status_error(result: HTTPResult) -> APIStatusError:
    message, code, etype, param = parse_error_body(result.text)
    return status_error_class(result.status_code)(
        message,
        status_code=result.status_code,
        code=code,
        type=etype,
        param=param,
        request_id=result.request_id,
    )


class HTTPSession:
    """One pooled httpx2 client, reused across calls, plus the retry loop.

    A client passed in is borrowed: :meth:`aclose` leaves it open for its owner.
    """

    def __init__(self, config: ClientConfig, client: httpx2.AsyncClient | None = None) -> None:
        self._config = config
        self._client = client
        self._owned = client is None

    def __repr__(self) -> str:
        return f"<HTTPSession {self._config.base_url} owned={self._owned}>"

    def _get_client(self) -> httpx2.AsyncClient:
        if self._client is None:
            timeout = httpx2.Timeout(self._config.timeout, connect=self._config.connect_timeout)
            self._client = httpx2.AsyncClient(
                timeout=timeout,
                follow_redirects=False,
                verify=self._config.ssl_context or True,
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is None or not self._owned:
            await trio.lowlevel.checkpoint()
            return
        await _close_shielded(client)

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> HTTPResult:
        """POST with retries; returns a 2xx result or raises the mapped error."""
        async with self._exchange(url, content, headers, stream=False) as (result, _):
            return result

    @asynccontextmanager
    async def stream_lines(
        self, url: str, *, content: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[tuple[HTTPResult, AsyncIterator[str]]]:
        """POST with retries and hand back the body line by line (for SSE).

        Retries only happen before a 2xx response starts; a failure mid-stream is raised.
        """
        async with self._exchange(url, content, headers, stream=True) as pair:
            yield pair

    def _timed_out(self) -> APITimeoutError:
        return APITimeoutError(
            f"the HTTP exchange did not finish within the {self._config.timeout:g} s timeout"
        )

    @asynccontextmanager
    async def _exchange(
        self, url: str, content: bytes, headers: Mapping[str, str], *, stream: bool
    ) -> AsyncIterator[tuple[HTTPResult, AsyncIterator[str]]]:
        client = self._get_client()
        attempt = 0
        while True:
            # One deadline for the whole attempt: connect, upload, headers and body. httpx2's
            # own timeouts are per operation, so a server trickling a byte at a time would
            # never trip them.
            deadline = trio.current_time() + self._config.timeout
            request = client.build_request("POST", url, content=content, headers=dict(headers))
            failure: APIConnectionError | None = None  # APITimeoutError included
            body: bytes | None = None
            try:
                send = partial(client.send, request, stream=True)
                response = await _within(deadline, self._timed_out, send)
            except APIConnectionError as exc:
                failure = exc
            else:
                try:
                    if response.status_code < 400 and stream:
                        result = HTTPResult(response.status_code, dict(response.headers), "")
                        # Raw bytes, one generator deep: httpx2's aiter_lines nests four async
                        # generators, and closing the outer one leaves the inner ones to the
                        # garbage collector when a stream is abandoned. Failures once the
                        # stream is yours are raised, never retried.
                        if response.is_stream_consumed:  # in-memory transports
                            yield result, _LineReader(None, body=response.content)
                            return
                        _close_core_stream_on_aclose(response)
                        raw = response.aiter_raw()
                        try:
                            yield result, _LineReader(raw, deadline, self._timed_out)
                        finally:
                            await _close_shielded(raw)  # noqa: ASYNC102 - shields itself, bounded
                        return
                    try:
                        body = await _within(deadline, self._timed_out, response.aread)
                    except APIConnectionError as exc:
                        failure = exc
                finally:
                    await _close_shielded(response)  # noqa: ASYNC102 - shields itself, bounded
            if body is not None:
                text = body.decode("utf-8", errors="replace")
                result = HTTPResult(response.status_code, dict(response.headers), text)
                if result.status_code < 400:
                    yield result, _LineReader(None)
                    return
                error = _status_error(result)
                delay = (
                    retry_delay(attempt, result.headers) if _should_retry(result, error) else None
                )
                if delay is None or attempt >= self._config.max_retries:
                    raise error
            if failure is not None:
                if attempt >= self._config.max_retries:
                    raise failure
                delay = retry_delay(attempt)
            attempt += 1
            cause = str(failure) if failure is not None else f"HTTP {result.status_code}"
            logger.info(
                "retrying %s in %.2f s (attempt %d of %d): %s",
                urlsplit(url).path, delay or 0, attempt + 1, self._config.max_retries + 1,
                self._config.redactor.text(cause),
            )  # fmt: skip
            await trio.sleep(delay or 0)


T = TypeVar("T")


async def _within(
    deadline: float, timed_out: Callable[[], APITimeoutError], call: Callable[[], Awaitable[T]]
) -> T:
    """*call*'s result, with transport errors mapped and *timed_out()* raised at *deadline*."""
    with trio.move_on_at(deadline), _map_transport_errors():
        return await call()
    raise timed_out()


async def _close_shielded(closable: Any) -> None:
    """Close *closable* even when the caller is cancelled, giving it at most 5 s."""
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        await closable.aclose()


class _ClosingStream:
    """Stands in for httpcore2's response stream, so that closing the response closes the
    generator that iterates it.

    httpx2 iterates httpcore2's stream with a bare ``async for`` inside an async generator;
    when a caller stops early (``break``, an error, a timeout), httpcore2's generator is left
    to the garbage collector, which trio reports as a ResourceWarning and closes late. The
    response's ``aclose`` reaches this object, which closes that generator first.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._live: Any = None

    def __aiter__(self) -> Any:
        self._live = self._inner.__aiter__()
        return self._live

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
        live, self._live = self._live, None
        if live is not None and hasattr(live, "aclose"):
            await live.aclose()
        if hasattr(self._inner, "aclose"):
            await self._inner.aclose()


def _close_core_stream_on_aclose(response: httpx2.Response) -> None:
    """Put a :class:`_ClosingStream` around httpcore2's stream, a few wrappers down."""
    stream: Any = response.stream
    for _ in range(4):  # BoundAsyncStream -> AsyncResponseStream -> httpcore2's stream
        inner = getattr(stream, "_httpcore_stream", None)
        if inner is not None:
            if not isinstance(inner, _ClosingStream):
                stream._httpcore_stream = _ClosingStream(inner)
            return
        stream = getattr(stream, "_stream", None)


class _LineReader:
    """Decoded body lines, with transport errors mapped.

    An iterator object rather than an async generator, so no scope is ever held open across
    the consumer's ``await`` (flake8-async ASYNC900).
    """

    def __init__(
        self,
        chunks: AsyncIterator[bytes] | None,
        deadline: float = math.inf,
        timed_out: Callable[[], APITimeoutError] | None = None,
        body: bytes = b"",
    ) -> None:
        self._chunks = chunks
        self._deadline = deadline
        self._timed_out = timed_out
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = body.decode("utf-8", errors="replace").replace("\r\n", "\n")
        *self._pending, self._partial = text.split("\n")

    def __aiter__(self) -> _LineReader:
        return self

    async def __anext__(self) -> str:
        await trio.lowlevel.checkpoint()  # buffered lines must not starve the scheduler
        while not self._pending:
            if self._chunks is None:
                if self._partial:
                    line, self._partial = self._partial, ""
                    return line
                raise StopAsyncIteration
            assert self._timed_out is not None
            try:
                read = partial(anext, self._chunks)
                chunk = await _within(self._deadline, self._timed_out, read)
            except StopAsyncIteration:
                self._chunks = None
                self._partial += self._decoder.decode(b"", final=True)
                continue
            text = self._partial + self._decoder.decode(chunk)
            *lines, self._partial = text.replace("\r\n", "\n").split("\n")
            self._pending.extend(lines)
        return self._pending.pop(0)
