"""A real PortAudio input device that plays a recording: ALSA's ``file`` plugin.

ALSA's ``file`` PCM reads its capture data from ``infile``; here that is a FIFO, written at
real-time pace by a thread, so PortAudio sees a device that delivers audio as a microphone
does, at the rate of the clock, and then silence for as long as the test needs. The
configuration goes in ``$HOME/.asoundrc`` of a temporary home, so the machine's own audio
setup is neither needed nor touched. PortAudio opens and closes the device while it lists
devices; the writer starts the recording again for every reader that opens the FIFO.

The plugin reads the FIFO once per period and takes what one read returns, so the writer
writes whole periods: 100 ms, the block the microphone helper asks PortAudio for.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import threading
import time
from pathlib import Path

import numpy as np

ASOUNDRC = """\
pcm.!default {{
    type file
    slave.pcm "quiet"
    file "/dev/null"
    infile "{fifo}"
    format "raw"
}}
pcm.quiet {{ type null }}
"""

BLOCK_S = 0.1  # what the client reads per period: ALSA reads the FIFO in whole periods


def portaudio_missing() -> str | None:
    """Why the microphone cannot be tested here, or ``None``.

    Not by importing sounddevice: that starts PortAudio, which must first see the test's
    ALSA configuration.
    """
    if importlib.util.find_spec("sounddevice") is None:
        return "the microphone tests need sounddevice: pip install 'trio-stt[mic]'"
    if ctypes.util.find_library("portaudio") is None:
        return "the microphone tests need PortAudio: apt install libportaudio2"
    return None


class PlayingDevice:
    """The default ALSA input device of processes run with :attr:`env`, playing *samples*.

    *samples* are mono int16 at 24 kHz: the format the client asks the device for, so that
    ALSA converts nothing.
    """

    def __init__(self, home: Path, samples: np.ndarray, *, lead_in_s: float = 0.5) -> None:
        self.home = home
        self.fifo = home / "capture.fifo"
        os.mkfifo(self.fifo)
        (home / ".asoundrc").write_text(ASOUNDRC.format(fifo=self.fifo))
        lead_in = np.zeros(int(24_000 * lead_in_s), np.int16)
        self.pcm = np.concatenate([lead_in, samples]).astype("<i2").tobytes()
        self.played = threading.Event()  # the whole recording went to a reader
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home)}

    def __enter__(self) -> PlayingDevice:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        # Unblock a writer waiting for a reader to open the FIFO.
        fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._thread.join(timeout=5)
        os.close(fd)

    def _run(self) -> None:
        step = int(24_000 * BLOCK_S) * 2
        silence = bytes(step)
        while not self._stop.is_set():
            try:
                with open(self.fifo, "wb") as pipe:  # blocks until a reader opens it
                    self.played.clear()  # a new reader: the recording plays from the start
                    start = time.monotonic()
                    sent = 0
                    while not self._stop.is_set():
                        chunk = self.pcm[sent * step : (sent + 1) * step] or silence
                        pipe.write(chunk)
                        pipe.flush()
                        sent += 1
                        if sent * step >= len(self.pcm):
                            self.played.set()
                        time.sleep(max(0.0, start + sent * BLOCK_S - time.monotonic()))
            except BrokenPipeError:
                continue  # that reader went away; play from the start for the next one
