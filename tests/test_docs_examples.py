"""Every Python example in the README and the docs is a complete program that runs.

Each ```python block is written to a file of its own and run as a user would run it: a
program with ``python``, a test module with ``pytest`` (pytest-trio's trio mode), against
the local server (``trio-stt serve``, PocketSphinx) found through ``OPENAI_BASE_URL``, in a
folder holding the recordings the examples name. The microphone example listens to a real
PortAudio device playing a recording, and is stopped with Ctrl+C once it has printed a turn.
```py blocks are other libraries' code, shown for comparison, and are not run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from trio_stt._audio import write_wav
from trio_stt.testing import bundled_samples

from .alsa_fifo import PlayingDevice, portaudio_missing
from .helpers import serve_in_a_process

pytestmark = pytest.mark.speech

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAX_LINE = 79  # examples are read on narrow screens, next to prose


def examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for n, match in enumerate(re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)):
            found.append((f"{page.relative_to(ROOT)}#{n + 1}", match.group(1)))
    return found


EXAMPLES = examples()


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with serve_in_a_process("--quiet") as (_, url):
        yield url


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the examples name: talk.wav, interview.mp3, meeting.wav."""
    here = tmp_path_factory.mktemp("examples")
    clips = {c.name: c.read()[0] for c in bundled_samples()}
    (here / "talk.wav").write_bytes(write_wav(clips["weather"], 24_000))
    soundfile.write(here / "interview.mp3", clips["report"], 24_000, format="MP3")
    gap = np.zeros(24_000, np.int16)
    meeting = np.concatenate([part for clip in clips.values() for part in (clip, gap)])
    (here / "meeting.wav").write_bytes(write_wav(meeting, 24_000))
    return here


def environment(server_url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return env | {"OPENAI_BASE_URL": server_url, "HOME": str(home)}


def test_there_are_examples_and_they_are_narrow() -> None:
    assert len(EXAMPLES) >= 15
    for where, code in EXAMPLES:
        wide = [line for line in code.splitlines() if len(line) > MAX_LINE]
        assert not wide, f"{where}: lines over {MAX_LINE} characters: {wide}"


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_example_runs(where: str, code: str, server_url: str, folder: Path) -> None:
    name = re.sub(r"\W", "_", where)
    if "def test_" in code:
        path = folder / f"test_{name}.py"
        path.write_text(code)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-o", "trio_mode=true", str(path)]  # fmt: skip
    else:
        path = folder / f"{name}.py"
        path.write_text(code)
        command = [sys.executable, str(path)]
    if uses_the_microphone(code):
        if (why := portaudio_missing()) is not None:  # as tests/test_microphone.py does
            pytest.skip(why)
        run_until_a_turn(command, server_url, folder)
        return
    done = subprocess.run(
        command, cwd=folder, env=environment(server_url, folder), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"{where}:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip() or "def test_" in code, f"{where} printed nothing"


def uses_the_microphone(code: str) -> bool:
    return "open_microphone(" in code or "start_soon(feed_from_microphone" in code


# Run as a program's first import, this makes the machine one without PortAudio.
NO_PORTAUDIO = """
import ctypes.util

_find = ctypes.util.find_library
ctypes.util.find_library = lambda name: None if "portaudio" in name else _find(name)
"""


@pytest.mark.parametrize(
    ("where", "code"),
    [(w, c) for w, c in EXAMPLES if uses_the_microphone(c)],
    ids=[w for w, c in EXAMPLES if uses_the_microphone(c)],
)
def test_microphone_examples_without_portaudio_say_what_to_install(
    where: str, code: str, server_url: str, folder: Path
) -> None:
    """It ended in a 28-line exception group; ``trio-stt listen`` said it in one line."""
    hidden = folder / "no-portaudio"
    hidden.mkdir(exist_ok=True)
    (hidden / "sitecustomize.py").write_text(NO_PORTAUDIO)
    path = folder / (re.sub(r"\W", "_", where) + ".py")
    path.write_text(code)
    env = environment(server_url, folder) | {"PYTHONPATH": str(hidden)}
    done = subprocess.run(
        [sys.executable, str(path)], cwd=folder, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "MissingDependencyError: the microphone needs the 'PortAudio'" in last, done.stderr
    assert "apt install libportaudio2" in last
    assert "ExceptionGroup" not in done.stderr and "+-+---" not in done.stderr


def run_until_a_turn(command: list[str], server_url: str, folder: Path) -> None:
    """A microphone program runs until Ctrl+C: stop it once it has printed a turn."""
    clip = next(c for c in bundled_samples() if c.name == "weather")
    home = folder / "mic-home"
    home.mkdir(exist_ok=True)
    with (
        PlayingDevice(home, clip.read()[0]),
        subprocess.Popen(
            command, cwd=folder, env=environment(server_url, home), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        ) as program,
    ):  # fmt: skip
        assert program.stdout is not None and program.stderr is not None
        try:
            line = program.stdout.readline()
            program.send_signal(signal.SIGINT)
            _, errors = program.communicate(timeout=30)
        finally:
            program.kill()
    assert "weather" in line, errors
