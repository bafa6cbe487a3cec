"""Ephemeral client secrets: a short-lived credential for one transcription session.

A server that holds the API key mints one (``POST /v1/realtime/client_secrets``) and hands
it to a browser or a phone, which then connects to OpenAI itself with
``Authorization: Bearer ek_...``: the key never leaves the server. The secret carries the
session's configuration, built by the same code as the session update, so a session opened
with it is configured as one opened with the key would be (protocol.md §4.2).

Sans-I/O: the request body and the parsing of the answer; the model sends it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import ConfigurationError
from ._protocol._dialects import build_session_update
from ._protocol._wire import PCM, WireFormat
from ._settings import STTModelSettings
from ._untrusted import Fields, load_json

__all__ = ["ClientSecret", "client_secret_request", "parse_client_secret"]

# OpenAI's bounds for expires_after.seconds.
MIN_SECONDS, MAX_SECONDS = 10, 7200


@dataclass(frozen=True)
class ClientSecret:
    """A minted secret. ``value`` is a credential: it is left out of the repr.

    Attributes:
        value: the ``ek_...`` string a client passes as its API key.
        expires_at: Unix seconds after which the secret opens nothing.
        session: the session configuration the secret carries, as the server returned it.
    """

    value: str = field(repr=False)
    expires_at: int
    session: Mapping[str, Any]


def client_secret_request(
    model: str,
    settings: STTModelSettings,
    expires_after: float,
    audio_format: WireFormat = PCM,
    *,
    wire_model: str | None = None,
) -> bytes:
    """The JSON body that asks for a secret for *model* configured by *settings*, under the
    name the server knows it by (*wire_model*: an Azure deployment)."""
    if not MIN_SECONDS <= expires_after <= MAX_SECONDS:
        raise ConfigurationError(
            f"expires_after must be {MIN_SECONDS} to {MAX_SECONDS} seconds; got {expires_after}"
        )
    settings.check_for(model, realtime=True)
    update = build_session_update(model, settings, "ga", "", audio_format, wire_model=wire_model)
    session = update["session"]
    body = {
        "expires_after": {"anchor": "created_at", "seconds": int(expires_after)},
        "session": session,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def parse_client_secret(body: str) -> ClientSecret:
    """The secret in a ``client_secrets`` answer; a malformed one names the bad field."""
    fields = Fields.root(load_json(body, "client secret"), "client secret")
    value = fields.text("value")
    expires_at = fields.count("expires_at")
    session = fields.optional_object("session")
    return ClientSecret(value, expires_at, dict(session.obj) if session is not None else {})
