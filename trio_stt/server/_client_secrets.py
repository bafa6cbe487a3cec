"""``POST /v1/realtime/client_secrets``: ephemeral secrets, as OpenAI mints them.

A secret opens one realtime session with the configuration it was minted with, until it
expires; then it opens nothing (protocol.md §4.2). The configuration is checked when the
secret is minted, with the rules a ``session.update`` meets, so a bad one is a 400 then and
not an error event later. Secrets live in memory, at most :data:`MAX_LIVE` at a time, and
are forgotten when used or expired.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._client_secrets import MAX_SECONDS, MIN_SECONDS
from .._errors import RemoteProtocolError
from .._protocol import SessionUpdateRequest
from .._protocol._dialects import parse_session_update
from .._protocol._events import SessionConfig
from .._untrusted import load_json
from ._strict import Refusal

__all__ = ["MintedSecret", "SecretStore", "read_mint_request", "mint_answer"]

DEFAULT_SECONDS = 600  # OpenAI's, when expires_after is left out
MAX_LIVE = 10_000


@dataclass(frozen=True)
class MintedSecret:
    value: str
    config: SessionConfig
    expires_at: int  # Unix seconds


class SecretStore:
    """The secrets minted and not yet used or expired."""

    def __init__(self, clock: Any = time.time) -> None:
        self._live: dict[str, MintedSecret] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self._live)

    def mint(self, config: SessionConfig, seconds: int) -> MintedSecret | None:
        """A new secret, or ``None`` when :data:`MAX_LIVE` are waiting to be used."""
        now = self._clock()
        self._live = {k: v for k, v in self._live.items() if v.expires_at > now}
        if len(self._live) >= MAX_LIVE:
            return None
        minted = MintedSecret(f"ek_{secrets.token_hex(24)}", config, int(now + seconds))
        self._live[minted.value] = minted
        return minted

    def redeem(self, value: str) -> MintedSecret | None:
        """The secret's configuration if *value* is live; it opens nothing after this."""
        minted = self._live.pop(value, None)
        if minted is None or minted.expires_at <= self._clock():
            return None
        return minted


Check = Callable[[SessionUpdateRequest, str | None], Refusal | None]


def read_mint_request(
    body: bytes, check: Check
) -> tuple[SessionConfig, Mapping[str, Any], int] | Refusal:
    """The configuration, its session object and the lifetime a mint request asks for.

    *check* is the realtime endpoint's ``update_refusal``-style check of a session update.
    """
    try:
        obj = load_json(body.decode("utf-8", "replace"), "the request body", finite=True)
    except RemoteProtocolError as exc:
        return Refusal(str(exc), "invalid_json")
    if not isinstance(obj, Mapping):
        return Refusal("The request body must be a JSON object.", "invalid_type")
    seconds = DEFAULT_SECONDS
    expires = obj.get("expires_after")
    if expires is not None:
        given = expires.get("seconds") if isinstance(expires, Mapping) else None
        anchor = expires.get("anchor", "created_at") if isinstance(expires, Mapping) else None
        if (
            anchor != "created_at"
            or not isinstance(given, int)
            or isinstance(given, bool)
            or not MIN_SECONDS <= given <= MAX_SECONDS
        ):
            return Refusal(
                f"expires_after must be {{'anchor': 'created_at', 'seconds': N}} with N from "
                f"{MIN_SECONDS} to {MAX_SECONDS}.",
                "invalid_value",
                "expires_after.seconds",
            )
        seconds = given
    session = obj.get("session")
    if not isinstance(session, Mapping) or session.get("type") != "transcription":
        return Refusal(
            "This server mints secrets for transcription sessions only: session.type must "
            "be 'transcription'.",
            "invalid_value",
            "session.type",
        )
    message = {"type": "session.update", "session": session}
    config, problem = parse_session_update(message)
    refusal = check(SessionUpdateRequest(config, raw=message, problem=problem), None)
    if refusal is not None:
        return refusal
    return config, session, seconds


def mint_answer(minted: MintedSecret, session: Mapping[str, Any]) -> str:
    """OpenAI's answer: the value, when it expires, and the session it configures."""
    described = {
        **session,
        "object": "realtime.transcription_session",
        "id": f"sess_{minted.value[3:15]}",
        "expires_at": minted.expires_at,
    }
    return json.dumps({"value": minted.value, "expires_at": minted.expires_at,
                       "session": described})  # fmt: skip
