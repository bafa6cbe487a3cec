from __future__ import annotations

import pytest

from trio_stt import ClientConfig, ConfigurationError, OpenAISTTModel

KEY = "sk-test-abcdefghijklmnop"


async def test_environment_is_read_and_overridable() -> None:
    env = {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": "https://gateway.example.com/openai/v1/",
        "OPENAI_ORG_ID": "org_1",
        "OPENAI_PROJECT_ID": "proj_1",
    }
    config = ClientConfig.from_env(env)
    assert config.base_url == "https://gateway.example.com/openai/v1"
    headers = await config.credential_headers()
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["OpenAI-Organization"] == "org_1"
    assert headers["OpenAI-Project"] == "proj_1"
    override = ClientConfig.from_env(env, base_url="https://other.example.com/v1")
    assert override.base_url == "https://other.example.com/v1"


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        ClientConfig.from_env({})
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAISTTModel("gpt-transcribe", base_url="https://api.openai.com/v1")
    with pytest.raises(ConfigurationError, match="OpenAI needs one"):
        ClientConfig.from_env({}, base_url="https://myresource.openai.azure.com/openai/v1")
    # Self-hosted servers, on loopback or another machine, commonly need no key.
    assert ClientConfig.from_env({}, base_url="http://127.0.0.1:9/v1").api_key is None
    assert ClientConfig.from_env({}, base_url="http://speech.lan:8000/v1").api_key is None


@pytest.mark.parametrize(
    ("base", "ws_base", "expected"),
    [
        (
            "https://api.openai.com/v1",
            None,
            "wss://api.openai.com/v1/realtime?intent=transcription",
        ),
        ("http://localhost:8000/v1", None, "ws://localhost:8000/v1/realtime?intent=transcription"),
        (
            "https://gw.example.com/v1?tenant=a",
            None,
            "wss://gw.example.com/v1/realtime?tenant=a&intent=transcription",
        ),
        (
            "https://api.openai.com/v1",
            "wss://res.openai.azure.com/openai/v1",
            "wss://res.openai.azure.com/openai/v1/realtime?intent=transcription",
        ),
    ],
)
def test_websocket_url_derivation(base: str, ws_base: str | None, expected: str) -> None:
    config = ClientConfig(api_key=KEY, base_url=base, websocket_base_url=ws_base)
    assert config.websocket_url == expected
    assert "model=" not in config.websocket_url


async def test_extra_query_and_headers_for_compatible_servers() -> None:
    config = ClientConfig(
        base_url="http://127.0.0.1:8000/v1",
        extra_query={"model": "Systran/faster-whisper-small"},
        extra_headers={"X-API-Key": "local", "authorization": "Bearer other"},
        api_key=KEY,
    )
    assert config.websocket_url.endswith(
        "intent=transcription&model=Systran%2Ffaster-whisper-small"
    )
    assert config.rest_url("audio/transcriptions").endswith(
        "/v1/audio/transcriptions?model=Systran%2Ffaster-whisper-small"
    )
    headers = await config.credential_headers()
    assert headers == {"X-API-Key": "local", "authorization": "Bearer other"}
    assert not any(k.lower() == "openai-beta" for k in headers)


@pytest.mark.parametrize(
    ("base", "ws_base"),
    [
        ("http://api.example.com/v1", None),
        ("https://api.example.com/v1", "ws://api.example.com/v1"),
    ],
)
def test_key_is_refused_over_cleartext_to_remote_hosts(base: str, ws_base: str | None) -> None:
    with pytest.raises(ConfigurationError, match="refusing to send the API key in cleartext"):
        ClientConfig(api_key=KEY, base_url=base, websocket_base_url=ws_base)
    allowed = ClientConfig(
        api_key=KEY, base_url=base, websocket_base_url=ws_base, allow_insecure=True
    )
    assert allowed.allow_insecure
    ClientConfig(api_key=KEY, base_url="http://[::1]:8000/v1")  # loopback is fine


@pytest.mark.parametrize("bad", ["ftp://x/v1", "not a url", "https:///v1"])
def test_malformed_base_url(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="is not a URL"):
        ClientConfig(api_key=KEY, base_url=bad)
