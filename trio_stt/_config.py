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
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import trio

from ._azure import TokenCache, TokenProvider
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
        key_header: how the key is sent: ``Authorization: Bearer <key>`` (OpenAI) or
            ``api-key: <key>`` (Azure).
        token_provider: an async callable giving bearer tokens (Azure Entra ID), instead
            of a key; see :meth:`for_azure`.
        api_version: Azure's classic surface: ``api-version`` on every URL and the
            deployment in the REST path. ``None`` for OpenAI and Azure's v1 surface.
        deployments: model name -> the name the server knows it by (an Azure deployment),
            sent in its place: in the URL, the upload and the session update.
        ssl_context: the TLS settings for ``https`` and ``wss`` (default: the system's
            trust store). Pass one that trusts your own CA to reach a LAN server started
            with ``trio-stt serve --certfile``.
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
    key_header: Literal["Authorization", "api-key"] = "Authorization"
    token_provider: TokenProvider | None = field(default=None, repr=False, compare=False)
    api_version: str | None = None
    deployments: Mapping[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

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
        if self.api_key is not None and self.token_provider is not None:
            raise ConfigurationError("pass api_key or token_provider, not both")
        if self.key_header not in ("Authorization", "api-key"):
            raise ConfigurationError(
                f"key_header must be 'Authorization' or 'api-key'; got {self.key_header!r}"
            )
        hosts = [urlsplit(self.base_url), urlsplit(self.websocket_url)]
        credential = self.api_key is not None or self.token_provider is not None
        if not credential and any(_is_openai_host(p.hostname) for p in hosts):
            raise ConfigurationError(
                "no API key: set the OPENAI_API_KEY environment variable or pass api_key= "
                f"(OpenAI needs one; base_url is {self.base_url})"
            )
        if credential and not self.allow_insecure:
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

    @cached_property
    def _tokens(self) -> TokenCache | None:
        return TokenCache(self.token_provider) if self.token_provider is not None else None

    @classmethod
    def for_azure(
        cls,
        endpoint: str | None = None,
        *,
        api_key: str | None = None,
        token_provider: TokenProvider | None = None,
        api_version: str | None = None,
        deployments: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> ClientConfig:
        """A configuration for Azure OpenAI, from arguments and Azure's usual variables.

        *endpoint* (``AZURE_OPENAI_ENDPOINT``) is the resource,
        ``https://<resource>.openai.azure.com``. The key (``AZURE_OPENAI_API_KEY``) goes in
        an ``api-key`` header; with *token_provider* instead, each request and handshake
        carries ``Authorization: Bearer`` with its token. Without *api_version* the v1
        surface is used (``/openai/v1``, the model name being the deployment's); with it
        (or ``OPENAI_API_VERSION``), the classic deployment paths. *deployments* maps model
        names to deployment names, when they differ.

        Example:
            ```python
            config = ClientConfig.for_azure(
                "https://contoso.openai.azure.com",
                deployments={"gpt-4o-transcribe": "transcribe-prod"},
            )
            model = OpenAISTTModel("gpt-4o-transcribe", config)
            ```
        """
        env = os.environ if environ is None else environ
        endpoint = endpoint or env.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ConfigurationError(
                "no Azure endpoint: set AZURE_OPENAI_ENDPOINT or pass endpoint= "
                "(https://<resource>.openai.azure.com)"
            )
        if token_provider is None:
            api_key = api_key or env.get("AZURE_OPENAI_API_KEY")
            if not api_key:
                raise ConfigurationError(
                    "no Azure credential: set AZURE_OPENAI_API_KEY or pass api_key= or "
                    "token_provider="
                )
        api_version = api_version or env.get("OPENAI_API_VERSION") or None
        root = re.sub(r"/openai(/v1)?$", "", endpoint.rstrip("/"))
        return cls(
            api_key=api_key,
            base_url=f"{root}/openai" if api_version else f"{root}/openai/v1",
            key_header="api-key",
            token_provider=token_provider,
            api_version=api_version,
            deployments=dict(deployments or {}),
            **overrides,
        )

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
        if self.api_key is not None and self.key_header == "api-key":
            headers["api-key"] = self.api_key
        elif self.api_key is not None:
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

    async def credential_headers(self) -> dict[str, str]:
        """Auth and identity headers for one request or handshake, with a fresh token when
        a provider gives them (learned by the redactor before anything can quote it).
        Never log these. Never ``OpenAI-Beta`` (see the dialects)."""
        headers = self._identity_headers()
        if self._tokens is not None:
            token = await self._tokens.get()
            self.redactor.learn(token)
            if not any(k.lower() == "authorization" for k in self.extra_headers):
                headers["Authorization"] = f"Bearer {token}"
        else:
            await trio.lowlevel.checkpoint()
        return headers

    def wire_model(self, model: str) -> str:
        """The name the server knows *model* by: its deployment, when one is named."""
        return self.deployments.get(model, model)

    def rest_url(self, path: str, model: str | None = None) -> str:
        """``base_url`` + *path*, with ``extra_query`` merged into the query string. On
        Azure's classic surface, *model*'s deployment goes into the path of an audio call
        and ``api-version`` into the query."""
        path = path.lstrip("/")
        query: dict[str, str] = {}
        if self.api_version is not None:
            query["api-version"] = self.api_version
            if model is not None and path.startswith("audio/"):
                path = f"deployments/{quote(self.wire_model(model), safe='')}/{path}"
        return _merge_query(self.base_url + "/" + path, {**query, **self.extra_query})

    def realtime_url(self, model: str | None = None) -> str:
        """:attr:`websocket_url`, with ``api-version`` and *model*'s ``deployment`` on
        Azure's classic surface."""
        if self.api_version is None:
            return self.websocket_url
        query = {"api-version": self.api_version}
        if model is not None:
            query["deployment"] = self.wire_model(model)
        return _merge_query(self.websocket_url, {**query, **self.extra_query})

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
