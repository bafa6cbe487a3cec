"""Regenerate the bundled test recordings in ``trio_stt/samples/`` from Debian's flite voices.

Each clip is one or more sentences, each spoken separately by flite and joined with a known
length of silence, so the number of turns a voice-activity detector should find is known. The
clips are resampled to 24 kHz mono PCM16 (the realtime API's format) and written next to
``samples.json``, which holds what was said. Needs ``flite`` on PATH (``apt-get install flite``);
the committed files mean nobody else needs it.

    python scripts/make_samples.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from trio_stt._audio import resample_int16, write_wav
from trio_stt._audio_files import read_audio

RATE = 24_000
LEAD_MS = 300  # silence before the first and after the last sentence
SAMPLES = Path(__file__).resolve().parent.parent / "trio_stt" / "samples"

# (file name, flite voice, pause between sentences in ms, sentences)
CLIPS = [
    ("weather", "awb", 0, ["the weather today is sunny with a light breeze"]),
    ("report", "rms", 0, ["please send me the report by friday"]),
    ("door", "rms", 900, ["please open the front door", "then turn on the kitchen lights"]),
    ("greeting", "awb", 1000, ["good morning everyone", "thank you for coming today"]),
    ("numbers", "kal16", 0, ["call me back at seven thirty tonight"]),
    ("park", "slt", 0, ["the children played in the park all afternoon"]),
]


def speak(text: str, voice: str, workdir: Path) -> npt.NDArray[np.int16]:
    path = workdir / "speech.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
    frames, rate, channels = read_audio(path.read_bytes())
    if channels != 1:
        raise SystemExit(f"flite gave {channels} channels for voice {voice}; expected 1")
    return resample_int16(frames.reshape(-1), rate, RATE)


def silence(ms: int) -> npt.NDArray[np.int16]:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def main() -> int:
    if shutil.which("flite") is None:
        print("make_samples: flite is not installed (apt-get install flite)", file=sys.stderr)
        return 1
    SAMPLES.mkdir(exist_ok=True)
    index = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, voice, pause_ms, sentences in CLIPS:
            parts = [silence(LEAD_MS)]
            for i, sentence in enumerate(sentences):
                if i:
                    parts.append(silence(pause_ms))
                parts.append(speak(sentence, voice, Path(tmp)))
            parts.append(silence(LEAD_MS))
            audio = np.concatenate(parts)
            (SAMPLES / f"{name}.wav").write_bytes(write_wav(audio, RATE))
            index.append(
                {
                    "file": f"{name}.wav",
                    "voice": voice,
                    "text": " ".join(sentences),
                    "turns": sentences,
                    "pause_ms": pause_ms,
                    "duration": round(len(audio) / RATE, 3),
                }
            )
            print(f"{name}.wav  {len(audio) / RATE:4.1f} s  {voice:6}  {' / '.join(sentences)}")
    (SAMPLES / "samples.json").write_text(json.dumps(index, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
