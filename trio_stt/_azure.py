"""Azure OpenAI: its endpoints, its ``api-key`` header, and Entra ID bearer tokens.

Two URL surfaces exist (protocol.md §4.3). The v1 surface,
``https://<resource>.openai.azure.com/openai/v1``, is OpenAI's API with a deployment name
for the model, and needs nothing else. The classic surface puts the deployment in the path
(``/openai/deployments/<deployment>/audio/transcriptions``) and wants ``api-version`` on
every URL; its realtime path (``/openai/realtime?deployment=...``) speaks the retired Beta
shape. Which one a configuration uses follows from whether it has an ``api_version``.

A token provider is the user's: azure-identity's ``get_bearer_token_provider`` (its async
flavour) or any async callable. It may return a string, which is used as it is and asked
for again at the next request (azure-identity caches and refreshes on its side), or an
object with ``token`` and ``expires_on`` (Unix seconds; azure-core's ``AccessToken``),
which is kept here and asked for again :data:`REFRESH_MARGIN` seconds before it expires.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import trio

from ._errors import ConfigurationError

__all__ = ["AccessTokenLike", "TokenProvider", "TokenCache", "REFRESH_MARGIN"]

REFRESH_MARGIN = 300.0  # azure-identity refreshes five minutes early too


@runtime_checkable
class AccessTokenLike(Protocol):
    """azure-core's ``AccessToken``, or anything shaped like it."""

    token: str
    expires_on: int


TokenProvider = Callable[[], Awaitable["str | AccessTokenLike"]]


class TokenCache:
    """The provider's last token, until shortly before it expires; one fetch at a time."""

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider
        self._token: str | None = None
        self._fresh_until = float("-inf")  # trio time
        self._lock = trio.Lock()

    def __repr__(self) -> str:
        return "<TokenCache>"  # never the token

    async def get(self) -> str:
        async with self._lock:  # concurrent sessions wait for one fetch, not one each
            if self._token is not None and trio.current_time() < self._fresh_until:
                return self._token
            answer = await self._provider()
            if isinstance(answer, str):
                token, fresh_for = answer, 0.0  # the provider keeps it: ask each time
            elif isinstance(answer, AccessTokenLike):
                token = answer.token
                fresh_for = answer.expires_on - time.time() - REFRESH_MARGIN
            else:
                raise ConfigurationError(
                    "token_provider must return a token string or an object with token and "
                    f"expires_on (azure-core's AccessToken); got {type(answer).__name__}"
                )
            if not token:
                raise ConfigurationError("token_provider returned an empty token")
            self._token = token
            self._fresh_until = trio.current_time() + fresh_for
            return token
