"""Azure OpenAI: each URL shape and header of protocol.md §4.3, as a real server receives
them (the local server records every request and handshake), with a key and with a token
provider; and the token cache under the mock clock."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qs

import numpy as np
import pytest
import trio
import trio.testing

from trio_stt import (
    AudioInput,
    ClientConfig,
    ConfigurationError,
    OpenAISTTModel,
    StreamedAudioInput,
    STTError,
    STTModelSettings,
)
from trio_stt._azure import TokenCache
from trio_stt.server import RestFault, RunningServer, ScriptedRecognizer, ServerConfig, open_server

from .helpers import feed

KEY = "azure-key-0123456789abcdef"
VERSION = "2025-04-01-preview"
AUDIO = AudioInput(np.zeros(2400, np.int16))


def azure(server: RunningServer, **options: object) -> ClientConfig:
    """An Azure configuration whose endpoint is the local server (as the resource)."""
    endpoint = server.base_url.removesuffix("/v1")
    return ClientConfig.for_azure(endpoint, environ={}, **options)  # type: ignore[arg-type]


def lenient() -> ServerConfig:
    # Deployment names are the customer's own, so the server takes any model name.
    return ServerConfig(record=True, recognizer=ScriptedRecognizer(["hello azure"]), lenient=True)


async def stream_once(model: OpenAISTTModel) -> list[str]:
    audio, turns = StreamedAudioInput(), []
    settings = STTModelSettings(turn_detection="manual")
    async with model.create_session(audio, settings) as session, trio.open_nursery() as nursery:
        nursery.start_soon(feed, audio, np.ones(4800, np.int16) * 3000)
        async for text in session.transcribe_turns():
            turns.append(text)
    return turns


@pytest.mark.parametrize(
    ("version", "rest_path", "rest_query"),
    [
        (None, "/openai/v1/audio/transcriptions", {}),
        (VERSION, "/openai/deployments/stt-prod/audio/transcriptions", {"api-version": [VERSION]}),
    ],
    ids=["v1", "classic"],
)
async def test_rest_with_a_key_uses_the_api_key_header_and_the_deployment(
    version: str | None, rest_path: str, rest_query: dict[str, list[str]]
) -> None:
    async with open_server(lenient()) as server:
        config = azure(
            server, api_key=KEY, api_version=version, deployments={"whisper-1": "stt-prod"}
        )
        async with OpenAISTTModel("whisper-1", config) as model:
            assert await model.transcribe(AUDIO) == "hello azure"
    request = server.app.requests[-1]
    assert (request.path, parse_qs(request.query)) == (rest_path, rest_query)
    assert request.headers["api-key"] == KEY and "authorization" not in request.headers
    assert request.fields["model"] == ["stt-prod"]  # the deployment, not the model


@pytest.mark.parametrize(
    ("version", "ws_path", "ws_query"),
    [
        (None, "/openai/v1/realtime", {"intent": ["transcription"]}),
        (
            VERSION,
            "/openai/realtime",
            {"intent": ["transcription"], "api-version": [VERSION], "deployment": ["live-prod"]},
        ),
    ],
    ids=["v1", "classic"],
)
async def test_realtime_with_a_key_names_the_deployment_in_the_session(
    version: str | None, ws_path: str, ws_query: dict[str, list[str]]
) -> None:
    async with open_server(lenient()) as server:
        config = azure(
            server,
            api_key=KEY,
            api_version=version,
            deployments={"gpt-live-transcribe": "live-prod"},
        )
        async with OpenAISTTModel("gpt-live-transcribe", config) as model:
            assert await stream_once(model) == ["hello azure"]
    session = server.app.realtime.sessions[-1]
    assert (session.path, parse_qs(session.query)) == (ws_path, ws_query)
    assert session.headers["api-key"] == KEY and "authorization" not in session.headers
    update = session.client_events[0]
    assert update["session"]["audio"]["input"]["transcription"]["model"] == "live-prod"
    assert update["session"]["audio"]["input"]["turn_detection"] is None  # still VAD-less


async def test_a_token_provider_gives_each_request_and_handshake_a_bearer_token() -> None:
    given: list[str] = []

    async def provider() -> str:
        await trio.lowlevel.checkpoint()
        given.append(f"entra-token-{len(given) + 1:04d}-abcdef")
        return given[-1]

    async with open_server(lenient()) as server:
        config = azure(server, token_provider=provider)
        assert "entra" not in repr(config)
        async with OpenAISTTModel("whisper-1", config) as model:
            await model.transcribe(AUDIO)
            await model.transcribe(AUDIO)
        async with OpenAISTTModel("gpt-live-transcribe", config) as model:
            await stream_once(model)
    first, second = server.app.requests[-2:]
    assert first.headers["authorization"] == f"Bearer {given[0]}"
    assert second.headers["authorization"] == f"Bearer {given[1]}"  # asked each time: it caches
    assert "api-key" not in first.headers
    assert server.app.realtime.sessions[-1].headers["authorization"] == f"Bearer {given[2]}"


async def test_a_token_is_never_in_an_error() -> None:
    async def provider() -> str:
        await trio.lowlevel.checkpoint()
        return "entra-token-echoed-0123456789"

    async with open_server(lenient()) as server:
        message = "token entra-token-echoed-0123456789 is not valid here"
        server.app.rest_faults.append(RestFault(401, "invalid_token", message))
        config = azure(server, token_provider=provider, max_retries=0)
        async with OpenAISTTModel("whisper-1", config) as model:
            with pytest.raises(STTError) as raised:
                await model.transcribe(AUDIO)
    assert "entra-token-echoed" not in str(raised.value) and "[redacted]" in str(raised.value)


@dataclass
class AccessToken:  # azure-core's shape
    token: str
    expires_on: int


async def test_an_expiring_token_is_fetched_again_before_it_expires(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetched: list[AccessToken] = []

    async def provider() -> AccessToken:
        await trio.lowlevel.checkpoint()
        fetched.append(AccessToken(f"token-{len(fetched)}", int(time.time()) + 3600))
        return fetched[-1]

    tokens = TokenCache(provider)
    assert await tokens.get() == "token-0"
    await trio.sleep(3000)  # an hour's token, 50 minutes on: still good
    assert await tokens.get() == "token-0" and len(fetched) == 1
    await trio.sleep(400)  # within five minutes of its expiry: refreshed
    assert await tokens.get() == "token-1" and len(fetched) == 2


async def test_concurrent_requests_share_one_fetch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls = 0

    async def slow_provider() -> AccessToken:
        nonlocal calls
        calls += 1
        await trio.sleep(1)
        return AccessToken("shared-token", int(time.time()) + 3600)

    tokens = TokenCache(slow_provider)
    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(tokens.get)
    assert calls == 1


def test_the_environment_and_the_endpoint_forms() -> None:
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com/",
        "AZURE_OPENAI_API_KEY": KEY,
    }
    v1 = ClientConfig.for_azure(environ=env)
    assert v1.base_url == "https://contoso.openai.azure.com/openai/v1"
    assert (
        v1.websocket_url == "wss://contoso.openai.azure.com/openai/v1/realtime?intent=transcription"
    )
    assert KEY not in repr(v1)
    classic = ClientConfig.for_azure(environ=env | {"OPENAI_API_VERSION": VERSION})
    assert classic.rest_url("audio/transcriptions", "whisper-1") == (
        "https://contoso.openai.azure.com/openai/deployments/whisper-1/audio/transcriptions"
        f"?api-version={VERSION}"
    )
    # The endpoint as the portal shows it, or with the path already on it: the same.
    for endpoint in (
        "https://contoso.openai.azure.com/openai/v1",
        "https://contoso.openai.azure.com/openai",
    ):
        assert ClientConfig.for_azure(endpoint, api_key=KEY, environ={}).base_url == v1.base_url
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        ClientConfig.for_azure(api_key=KEY, environ={})
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_API_KEY"):
        ClientConfig.for_azure("https://contoso.openai.azure.com", environ={})
    with pytest.raises(ConfigurationError, match="cleartext"):
        ClientConfig.for_azure("http://contoso.openai.azure.com", api_key=KEY, environ={})
