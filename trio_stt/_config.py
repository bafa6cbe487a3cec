"""Where to connect and how to authenticate, with the key kept out of sight.

The rules follow openai-python so that an ``OPENAI_BASE_URL`` that works there works here
(protocol.md §4.4): the WebSocket URL is the base URL with ``http`` -> ``ws`` and anything
else -> ``wss``, plus ``/realtime?intent=transcription``. No ``?model=`` is added: on OpenAI's
host it opens a conversation session that refuses transcription updates.

Security rules enforced here, once, so no caller can forget them:

* the key never appears in a repr (the field is hidden) or an error message;
* the key is never sent over cleartext (``http://``, ``ws://``) to a host that is not loopback,
  unless the caller sets ``allow_insecure=True``;
* a missing key is an error naming ``OPENAI_API_KEY`` - except for loopback servers, which
  commonly need none.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._errors import ConfigurationError
from ._secrets import Redactor, secret_values

__all__ = ["DEFAULT_BASE_URL", "ClientConfig"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"

_ENV_VARS = {
    "api_key": "OPENAI_API_KEY",
    "base_url": "OPENAI_BASE_URL",
    "organization": "OPENAI_ORG_ID",
    "project": "OPENAI_PROJECT_ID",
}


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ClientConfig:
    """Connection settings shared by the REST and realtime paths.

    Build it with :meth:`from_env` to read ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
    ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID``; keyword arguments override the environment.

    Attributes:
        base_url: REST base, e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        websocket_base_url: used verbatim for the realtime URL when set; otherwise derived.
        extra_headers: sent on every request and handshake (compatible servers, gateways).
        extra_query: added to every URL (``model=...`` for speaches or LocalAI, for example).
        allow_insecure: permit sending the key over cleartext to a non-loopback host.
        max_retries: REST retries after 408/409/429/5xx and connection failures.
        timeout: seconds for a whole REST exchange; connect_timeout for its connect phase.
    """

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    websocket_base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    extra_query: Mapping[str, str] = field(default_factory=dict)
    allow_insecure: bool = False
    max_retries: int = 2
    timeout: float = 600.0
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not self.base_url:
            object.__setattr__(self, "base_url", DEFAULT_BASE_URL)
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        for name, url, schemes in (
            ("base_url", self.base_url, ("http", "https")),
            ("websocket_base_url", self.websocket_base_url, ("ws", "wss", "http", "https")),
        ):
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in schemes or not parts.hostname:
                raise ConfigurationError(
                    f"{name} {url!r} is not a URL of scheme {'/'.join(schemes)} with a host"
                )
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0; got {self.max_retries}")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigurationError("api_key is empty; set OPENAI_API_KEY or pass api_key=")
        hosts = [urlsplit(self.base_url), urlsplit(self.websocket_url)]
        if self.api_key is None and any(_is_openai_host(p.hostname) for p in hosts):
            raise ConfigurationError(
                "no API key: set the OPENAI_API_KEY environment variable or pass api_key= "
                f"(OpenAI needs one; base_url is {self.base_url})"
            )
        if self.api_key is not None and not self.allow_insecure:
            for parts in hosts:
                if parts.scheme in ("http", "ws") and not is_loopback_host(parts.hostname):
                    raise ConfigurationError(
                        f"refusing to send the API key in cleartext ({parts.scheme}://) to "
                        f"{parts.hostname}; use https/wss or pass allow_insecure=True"
                    )

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            if item.name == "api_key":
                continue
            value = getattr(self, item.name)
            if item.name in ("extra_headers", "extra_query"):
                secrets = secret_values(None, value, {})
                value = {k: "[redacted]" if v in secrets else v for k, v in value.items()}
            shown.append(f"{item.name}={value!r}")
        return f"ClientConfig({', '.join(shown)})"

    @cached_property
    def redactor(self) -> Redactor:
        """Masks this configuration's secrets in text and exceptions (see docs/security.md)."""
        return Redactor(secret_values(self.api_key, self.extra_headers, self.extra_query))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        """Read the ``OPENAI_*`` variables, then apply *overrides* (``None`` values ignored)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for attr, var in _ENV_VARS.items():
            if env.get(var):
                values[attr] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_options(self, **changes: Any) -> ClientConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @property
    def is_openai(self) -> bool:
        """True when the REST host is OpenAI's own."""
        return (urlsplit(self.base_url).hostname or "").endswith("api.openai.com")

    def _identity_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        # Case-insensitive override: a caller's "authorization" replaces ours.
        lowered = {k.lower() for k in self.extra_headers}
        headers = {k: v for k, v in headers.items() if k.lower() not in lowered}
        headers.update(self.extra_headers)
        return headers

    def rest_headers(self) -> dict[str, str]:
        """Headers for REST calls, including ``Authorization``. Never log these."""
        return self._identity_headers()

    def websocket_headers(self) -> list[tuple[str, str]]:
        """Handshake headers: auth and identity only. Never ``OpenAI-Beta`` (see the dialects)."""
        return list(self._identity_headers().items())

    def rest_url(self, path: str) -> str:
        """``base_url`` + *path*, with ``extra_query`` merged into the query string."""
        return _merge_query(self.base_url + "/" + path.lstrip("/"), self.extra_query)

    @property
    def websocket_url(self) -> str:
        """The realtime transcription URL (``.../realtime?intent=transcription``)."""
        if self.websocket_base_url is not None:
            parts = urlsplit(self.websocket_base_url.rstrip("/"))
            scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        else:
            parts = urlsplit(self.base_url)
            scheme = "ws" if parts.scheme == "http" else "wss"
        path = parts.path.rstrip("/") + "/realtime"
        query = [*parse_qsl(parts.query), ("intent", "transcription")]
        url = urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))
        return _merge_query(url, self.extra_query)


def _merge_query(url: str, extra: Mapping[str, str]) -> str:
    if not extra:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(extra)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _is_openai_host(host: str | None) -> bool:
    """OpenAI's and Azure OpenAI's hosts, which always need a key. Self-hosted servers, on
    loopback or elsewhere, may need none; one that does answers 401 and says so."""
    host = (host or "").lower().rstrip(".")
    return host in ("openai.com", "openai.azure.com") or host.endswith(
        (".openai.com", ".openai.azure.com")
    )
