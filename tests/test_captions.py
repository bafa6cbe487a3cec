"""The captions example in a real browser: Debian's Chromium, its fake microphone playing a
bundled recording, driven over the DevTools protocol (a WebSocket, spoken with trio-websocket).

The page captures the fake microphone, the app opens a session per tab against the local
server (PocketSphinx), and the recording's words must appear on the page as a final turn.
Closing the tab must end its session within a second. ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import base64
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest
import soundfile
import trio
import trio_websocket

from trio_stt import ClientConfig
from trio_stt.server import PocketSphinxRecognizer
from trio_stt.testing import bundled_samples, open_fake_server, word_error_rate

pytestmark = pytest.mark.speech

ROOT = Path(__file__).parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:  # .ci/run installs it
    pytest.skip(
        "the browser test needs Chromium: apt-get install chromium", allow_module_level=True
    )


def load_example() -> Any:
    path = ROOT / "examples" / "captions" / "app.py"
    spec = importlib.util.spec_from_file_location("captions_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["captions_app"] = module
    spec.loader.exec_module(module)
    return module


captions = load_example()


class DevTools:
    """One page of a browser, over the DevTools protocol."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        await self.ws.send_message(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            answer = json.loads(await self.ws.get_message())
            if answer.get("id") == call_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


@asynccontextmanager
async def open_browser(
    url: str, microphone: Path, profile: Path
) -> AsyncIterator[tuple[str, str, str]]:
    """Chromium, headless, showing *url*, its microphone playing *microphone*. Yields the
    DevTools URLs of the browser and of the page, and the page's target id."""
    assert CHROMIUM is not None
    args = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", f"--user-data-dir={profile}", "--remote-debugging-port=0",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        "--autoplay-policy=no-user-gesture-required", url,
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        assert process.stderr is not None
        seen = b""
        with trio.fail_after(30):
            while (found := re.search(rb"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)", seen)) is None:  # fmt: skip
                chunk = await process.stderr.receive_some()
                if not chunk:
                    raise AssertionError(f"Chromium ended: {seen.decode(errors='replace')}")
                seen += chunk
        browser_url, port = found.group(1).decode(), int(found.group(2))
        async with httpx2.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        yield browser_url, page["webSocketDebuggerUrl"], page["id"]
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


def heard(said: str, finals: list[str]) -> bool:
    """Whether the page shows *said* (WER 0.35 or less), in one final turn or two."""
    spans = [" ".join(finals[i : i + 2]) for i in range(len(finals))]
    return any(word_error_rate(said, span) <= 0.35 for span in spans)


async def test_the_recordings_words_appear_on_the_page_and_closing_the_tab_ends_it(
    tmp_path: Path,
) -> None:
    clip = next(c for c in bundled_samples() if c.name == "door")
    samples, rate = clip.read()
    microphone = tmp_path / "microphone.wav"
    silence = np.zeros(rate, np.int16)  # a second before and after: turns end, then it loops
    soundfile.write(microphone, np.concatenate([silence, samples, silence]), rate)
    async with (
        open_fake_server(recognizer=PocketSphinxRecognizer()) as server,
        trio.open_nursery() as nursery,
    ):
        app = captions.CaptionsApp(config=ClientConfig(base_url=server.base_url))
        url = await nursery.start(captions.serve_captions, app, "127.0.0.1", 0)
        browser = open_browser(f"{url}/?autostart", microphone, tmp_path / "profile")
        async with browser as (browser_url, page_url, target):
            async with trio_websocket.open_websocket_url(page_url) as ws:
                page = DevTools(ws)
                finals: list[str] = []
                listed = "[...document.querySelectorAll('#finals li')].map(li => li.textContent)"
                with trio.fail_after(60):
                    while not heard(clip.text, finals):  # noqa: ASYNC110 - the DOM is polled
                        await trio.sleep(0.25)
                        finals = await page.evaluate(listed)
                assert app.open_tabs == 1 and server.app.realtime.active == 1
                if os.environ.get("TRIO_STT_SCREENSHOT"):  # docs/captions.png, made by hand
                    shot = await page.call("Page.captureScreenshot", format="png")
                    Path(os.environ["TRIO_STT_SCREENSHOT"]).write_bytes(
                        base64.b64decode(shot["data"])
                    )
            async with trio_websocket.open_websocket_url(browser_url) as browser_ws:
                await DevTools(browser_ws).call("Target.closeTarget", targetId=target)
            with trio.fail_after(1):  # the tab is gone: its session ends at once
                while server.app.realtime.active or app.open_tabs:  # noqa: ASYNC110
                    await trio.sleep(0.01)
        nursery.cancel_scope.cancel()


async def test_a_failed_upstream_is_shown_on_its_page(tmp_path: Path) -> None:
    microphone = tmp_path / "microphone.wav"
    soundfile.write(microphone, np.zeros(24_000, np.int16), 24_000)
    async with (
        open_fake_server(api_key="sk-the-servers-key-0123456789") as server,
        trio.open_nursery() as nursery,
    ):
        wrong = ClientConfig(base_url=server.base_url, api_key="sk-not-the-key-0123456789")
        app = captions.CaptionsApp(config=wrong)
        url = await nursery.start(captions.serve_captions, app, "127.0.0.1", 0)
        browser = open_browser(f"{url}/?autostart", microphone, tmp_path / "profile")
        async with browser as (_, page_url, _), trio_websocket.open_websocket_url(page_url) as ws:
            page = DevTools(ws)
            shown = None
            with trio.fail_after(30):
                while not shown:  # noqa: ASYNC110 - the DOM is only there to be asked
                    await trio.sleep(0.1)
                    shown = await page.evaluate(
                        "document.querySelector('#status.error')?.textContent"
                    )
        nursery.cancel_scope.cancel()
    assert shown.startswith("transcription failed:") and "Incorrect API key" in shown
    assert "sk-not-the-key" not in shown  # the key is masked, on the page too
