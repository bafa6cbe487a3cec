"""Ephemeral client secrets against the local server: mint, connect, refused after."""

from __future__ import annotations

import json
import time

import httpx2
import pytest
import trio
import trio_websocket

from trio_stt import (
    AuthenticationError,
    BadRequestError,
    ClientConfig,
    ConfigurationError,
    OpenAISTTModel,
    StreamedAudioInput,
    STTError,
    STTModelSettings,
)
from trio_stt.server import PocketSphinxRecognizer, ServerConfig, STTServerApp, open_server
from trio_stt.server._client_secrets import SecretStore
from trio_stt.testing import bundled_samples, word_error_rate

KEY = "sk-server-side-key-0123456789"


def with_key(base_url: str, key: str, model: str = "gpt-live-transcribe") -> OpenAISTTModel:
    return OpenAISTTModel(model, ClientConfig(base_url=base_url, api_key=key))


async def transcribe_a_clip(model: OpenAISTTModel) -> tuple[str, str]:
    """What one bundled clip was, and what a session of *model* made of it."""
    clip = next(c for c in bundled_samples() if c.name == "door")
    samples, _ = clip.read()
    audio = StreamedAudioInput()
    async with model.create_session(audio) as session, trio.open_nursery() as nursery:

        async def speak() -> None:
            for start in range(0, len(samples), 480):  # 20 ms frames, flat out
                await audio.add_audio(samples[start : start + 480])
            await audio.aclose()

        nursery.start_soon(speak)
        turns = [text async for text in session.transcribe_turns()]
    return clip.text, " ".join(turns)


async def test_a_secret_opens_one_session_configured_as_minted() -> None:
    config = ServerConfig(recognizer=PocketSphinxRecognizer(), api_key=KEY)
    async with open_server(config) as server:
        async with with_key(server.base_url, KEY) as minter:
            secret = await minter.create_client_secret(
                STTModelSettings(language="en"), expires_after=60
            )
        assert secret.value.startswith("ek_") and secret.value not in repr(secret)
        assert time.time() + 50 < secret.expires_at <= time.time() + 61
        transcription = secret.session["audio"]["input"]["transcription"]
        assert transcription == {"model": "gpt-live-transcribe", "languages": ["en"]}

        async with with_key(server.base_url, secret.value) as browser:
            said, heard = await transcribe_a_clip(browser)
        assert word_error_rate(said, heard) <= 0.2, heard

        with pytest.raises(STTError, match="Incorrect API key") as refused:
            async with with_key(server.base_url, secret.value) as again:
                await transcribe_a_clip(again)
        assert secret.value not in str(refused.value)


async def test_a_session_opened_with_a_secret_starts_with_its_configuration() -> None:
    """A browser may send no session.update at all, nor the intent: the secret says both."""
    async with open_server() as server:
        async with with_key(server.base_url, "unused", "gpt-4o-transcribe") as minter:
            settings = STTModelSettings(language="fr", turn_detection={"type": "server_vad"})
            secret = await minter.create_client_secret(settings)
        url = server.websocket_url.split("?")[0]
        headers = [("Authorization", f"Bearer {secret.value}")]
        async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
            created = json.loads(await ws.get_message())
    assert created["type"] == "session.created"
    audio_input = created["session"]["audio"]["input"]
    assert audio_input["transcription"]["model"] == "gpt-4o-transcribe"
    assert audio_input["transcription"]["language"] == "fr"
    assert audio_input["turn_detection"]["type"] == "server_vad"


async def test_an_expired_secret_opens_nothing() -> None:
    now = [time.time()]
    app = STTServerApp()
    app.secrets = SecretStore(clock=lambda: now[0])
    async with open_server(app) as server:
        async with with_key(server.base_url, "unused") as minter:
            secret = await minter.create_client_secret(expires_after=10)
        now[0] += 10.5
        with pytest.raises(STTError, match="Incorrect API key"):
            async with with_key(server.base_url, secret.value) as late:
                await transcribe_a_clip(late)
    assert len(app.secrets) == 0


async def test_minting_needs_the_key_and_a_configuration_the_model_takes() -> None:
    async with open_server(ServerConfig(api_key=KEY)) as server:
        async with with_key(server.base_url, "sk-wrong-key-0123456789") as wrong:
            with pytest.raises(AuthenticationError):
                await wrong.create_client_secret()
        async with with_key(server.base_url, KEY) as minter:
            secret = await minter.create_client_secret()
            with pytest.raises(ConfigurationError, match="expires_after must be 10 to 7200"):
                await minter.create_client_secret(expires_after=7201)
            with pytest.raises(ConfigurationError, match="no server VAD"):
                vad = STTModelSettings(turn_detection={"type": "server_vad"})
                await minter.create_client_secret(vad)
        async with with_key(server.base_url, secret.value) as secret_as_key:
            with pytest.raises(AuthenticationError):  # a secret mints nothing
                await secret_as_key.create_client_secret()
        # What the client refuses early, the server refuses too, in OpenAI's words.
        body = {
            "session": {
                "type": "transcription",
                "audio": {"input": {"transcription": {"model": "gpt-live-transcribe"},
                                    "turn_detection": {"type": "server_vad"}}},
            }
        }  # fmt: skip
        async with httpx2.AsyncClient() as http:
            answer = await http.post(
                f"{server.base_url}/realtime/client_secrets",
                json=body,
                headers={"Authorization": f"Bearer {KEY}"},
            )
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": "Turn detection is not supported for this transcription model.",
        "type": "invalid_request_error",
        "param": "session.audio.input.turn_detection",
        "code": "invalid_value",
    }


async def test_a_refused_mint_is_a_typed_error() -> None:
    async with open_server() as server:
        async with with_key(server.base_url, "unused") as minter:
            with pytest.raises(BadRequestError, match="Invalid value: 'soon'"):
                await minter.create_client_secret(STTModelSettings(delay="soon"))
