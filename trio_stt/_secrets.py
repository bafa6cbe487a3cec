"""Keeping the configured secrets out of everything trio-stt builds.

A server may quote whatever it was sent: the API key in a 401 message, the Authorization
header in a rejected handshake's body. :func:`~trio_stt.redact_secrets` masks what is shaped
like an OpenAI key; a :class:`Redactor` also masks the literal secrets one configuration
holds (the API key, however it is shaped, and the values of credential-like extra headers and
query parameters), in the forms a server is likely to echo them in (as is, JSON-escaped,
URL-encoded).

It is applied where text leaves for the user: server messages in events, and every exception
at the public boundary together with its whole ``__cause__``/``__context__`` chain and notes.
Our exceptions are masked in place. A third-party exception is kept only if nothing in it
matches and it carries no response body; otherwise a :class:`RedactedException` with its type
name and masked message takes its place in the chain, because its attributes (headers,
bodies) cannot all be rewritten safely.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus

from ._errors import KEY_SHAPE, STTError

__all__ = [
    "MIN_SECRET_LENGTH",
    "RedactedException",
    "Redactor",
    "masking_logs",
    "secret_values",
]

MIN_SECRET_LENGTH = 6
"""Shorter values are not masked: they would match ordinary words, and guard nothing."""

MASK = "[redacted]"

_CREDENTIAL_NAME = re.compile(r"auth|key|token|secret|password|cookie|signature", re.IGNORECASE)

# Attributes by which third-party exceptions carry what a server sent back.
_BODY_ATTRIBUTES = ("body", "response", "headers")


def secret_values(
    api_key: str | None, headers: Mapping[str, str], query: Mapping[str, str]
) -> list[str]:
    """The literal secrets in a configuration: the key, and the values of headers and query
    parameters whose names say they are credentials (``Authorization``, ``api-key``...)."""
    found = [api_key] if api_key else []
    for name, value in [*headers.items(), *query.items()]:
        if _CREDENTIAL_NAME.search(name):
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                found.append(token.strip())
    return found


class RedactedException(Exception):
    """Stands in, in an exception chain, for a third-party exception that held a secret or a
    server's response body. ``original_type`` names what it replaced."""

    def __init__(self, original_type: str, message: str) -> None:
        super().__init__(f"{original_type}: {message}" if message else original_type)
        self.original_type = original_type


MAX_LEARNED = 16


class Redactor:
    """Masks one configuration's secrets (and anything shaped like an OpenAI key)."""

    __slots__ = ("_learned", "_pattern", "_secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = [s for s in secrets if len(s) >= MIN_SECRET_LENGTH]
        self._learned: list[str] = []
        self._compile()

    def _compile(self) -> None:
        forms: set[str] = set()
        for secret in [*self._secrets, *self._learned]:
            forms |= {secret, json.dumps(secret)[1:-1], quote(secret, safe=""),
                      quote_plus(secret)}  # fmt: skip
        literal = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
        alternatives = [literal] if literal else []
        self._pattern = re.compile("|".join([*alternatives, KEY_SHAPE.pattern]))

    def learn(self, secret: str) -> None:
        """Mask *secret* from now on too: a bearer token fetched while running. The last
        :data:`MAX_LEARNED` are kept: an older token has expired, but may still be quoted."""
        if len(secret) < MIN_SECRET_LENGTH or secret in self._secrets or secret in self._learned:
            return
        self._learned = [*self._learned[-(MAX_LEARNED - 1) :], secret]
        self._compile()

    def __repr__(self) -> str:
        return "<Redactor>"  # never the pattern: it is the secrets

    def text(self, text: str) -> str:
        return self._pattern.sub(MASK, text)

    def leaks(self, text: str) -> bool:
        return self._pattern.search(text) is not None

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Mask every exception of ours leaving the block, with its whole chain, in place.

        Yours (raised by your code inside a block of ours), ``Cancelled`` and
        ``KeyboardInterrupt`` pass untouched: they are not ours to rewrite.
        """
        try:
            yield
        except STTError as exc:
            self.exception(exc)
            raise

    def exception(self, exc: BaseException) -> BaseException:
        """Mask *exc* and its chain. Returns *exc*, changed in place."""
        self._mask_own(exc)  # the top is raised as it is, so it is never replaced
        self._mask_links(exc, {id(exc): exc})
        return exc

    # -------------------------------------------------------------- the chain

    def _mask_links(self, exc: BaseException, done: dict[int, BaseException]) -> None:
        cause, context, suppress = exc.__cause__, exc.__context__, exc.__suppress_context__
        if cause is not None:
            exc.__cause__ = self._clean(cause, done)
        if context is not None:
            exc.__context__ = self._clean(context, done)
        exc.__suppress_context__ = suppress  # assigning __cause__ sets it
        if isinstance(exc, BaseExceptionGroup):
            for child in exc.exceptions:  # a group's members cannot be swapped; mask them
                self._mask_own(child)
                self._mask_links(child, done)

    def _clean(self, exc: BaseException, done: dict[int, BaseException]) -> BaseException:
        """*exc* masked in place, or what replaces it in the chain."""
        if id(exc) in done:
            return done[id(exc)]
        replacement = exc
        if isinstance(exc, BaseExceptionGroup):
            members = [self._clean(child, done) for child in exc.exceptions]
            if any(new is not old for new, old in zip(members, exc.exceptions, strict=True)):
                replacement = exc.derive(members)
                replacement.__traceback__ = exc.__traceback__
        elif isinstance(exc, STTError) or not self._carries_secret(exc):
            self._mask_own(exc)
        else:
            kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
            body_free = self.text(str(exc)) if not _has_body(exc) else ""
            replacement = RedactedException(kind, body_free)
            replacement.__traceback__ = exc.__traceback__
        done[id(exc)] = replacement
        if replacement is not exc:
            replacement.__cause__, replacement.__context__ = exc.__cause__, exc.__context__
            replacement.__suppress_context__ = exc.__suppress_context__
        self._mask_links(replacement, done)
        return replacement

    def _carries_secret(self, exc: BaseException) -> bool:
        if _has_body(exc):
            return True
        try:
            shown = [str(exc), repr(exc), repr(exc.args), *getattr(exc, "__notes__", ())]
            shown += [repr(value) for value in getattr(exc, "__dict__", {}).values()]
        except Exception:  # a broken __str__ or __repr__: we cannot tell, so assume it does
            return True
        return any(self.leaks(text) for text in shown)

    def _mask_own(self, exc: BaseException) -> None:
        """Mask the strings an exception shows: its args, its string attributes, its notes."""
        exc.args = tuple(self._value(arg) for arg in exc.args)
        attributes = getattr(exc, "__dict__", None)
        if attributes is not None:
            for name, value in list(attributes.items()):
                if name != "__notes__":
                    attributes[name] = self._value(value)
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [self._value(note) for note in notes]

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            text = value.decode("utf-8", "replace")
            masked = self.text(text)
            return masked.encode() if masked != text else value
        return value


def _has_body(exc: BaseException) -> bool:
    return any(getattr(exc, name, None) for name in _BODY_ATTRIBUTES)


class _MaskingFilter(logging.Filter):
    """Masks the secrets of every session alive in one third-party logger's records."""

    def __init__(self) -> None:
        super().__init__()
        self.active: dict[int, tuple[Redactor, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.active:
            text = record.getMessage()
            masked = text
            for redactor, _ in self.active.values():
                masked = redactor.text(masked)
            if masked != text:
                record.msg, record.args = masked, None
        return True


_FILTERS: dict[str, _MaskingFilter] = {}


@contextmanager
def masking_logs(logger: str, redactor: Redactor) -> Iterator[None]:
    """Mask *redactor*'s secrets in *logger*'s records for the duration of the block.

    trio-websocket logs a peer's close reason at DEBUG, and a server may put whatever it was
    sent there. A filter on that logger is the only place such a record can be cleaned; it
    costs nothing unless DEBUG is on.
    """
    masking = _FILTERS.get(logger)
    if masking is None:
        masking = _FILTERS[logger] = _MaskingFilter()
        logging.getLogger(logger).addFilter(masking)
    key = id(redactor)
    _, count = masking.active.get(key, (redactor, 0))
    masking.active[key] = (redactor, count + 1)
    try:
        yield
    finally:
        _, count = masking.active[key]
        if count == 1:
            del masking.active[key]
        else:
            masking.active[key] = (redactor, count - 1)
