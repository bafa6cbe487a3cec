from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from trio_stt import AudioFormatError, AudioInput
from trio_stt._audio import (
    iter_pcm16_chunks,
    pcm16_duration_ms,
    resample_int16,
    to_mono_int16,
    to_pcm16_bytes,
    write_wav,
)
from trio_stt._audio_files import read_audio


@pytest.mark.parametrize(
    ("buffer", "channels", "pattern"),
    [
        (np.zeros(10, np.float64), 1, "unsupported dtype float64; expected int16 or float32"),
        (np.zeros(10, np.int32), 1, "unsupported dtype int32"),
        (np.zeros(10, np.uint8), 1, "unsupported dtype uint8"),
        (np.zeros((2, 3, 4), np.int16), 1, r"shape \(2, 3, 4\)"),
        (np.zeros((10, 2), np.int16), 1, "has 2 channel columns, but channels=1"),
        (np.zeros(9, np.int16), 2, "9 interleaved samples do not divide into 2 channels"),
        (np.zeros(0, np.int16), 1, "audio buffer is empty"),
        (np.array([0.0, np.nan, 0.1], np.float32), 1, "1 NaN or infinite samples"),
        (np.array([np.inf, -np.inf], np.float32), 1, "2 NaN or infinite samples"),
        ([0, 1, 2], 1, "numpy array .* got list"),
        (np.zeros(4, np.int16), 0, "channels must be a positive integer; got 0"),
    ],
)
def test_bad_buffers_name_the_problem(buffer: object, channels: int, pattern: str) -> None:
    with pytest.raises(AudioFormatError, match=pattern) as info:
        AudioInput(buffer, channels=channels)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_float32_is_clipped_and_scaled() -> None:
    out = to_mono_int16(np.array([0.0, 0.5, 1.0, -1.0, 2.0, -3.0], np.float32))
    assert out.tolist() == [0, 16384, 32767, -32767, 32767, -32767]


def test_stereo_downmix_averages_without_overflow() -> None:
    stereo = np.array([[32767, 32767], [-32768, -32768], [1000, -1000]], np.int16)
    assert to_mono_int16(stereo, 2).tolist() == [32767, -32768, 0]
    interleaved = stereo.reshape(-1)
    assert to_mono_int16(interleaved, 2).tolist() == [32767, -32768, 0]


def test_pcm16_bytes_are_little_endian_at_24k() -> None:
    pcm = to_pcm16_bytes(np.array([1, -2], np.int16))
    assert pcm == b"\x01\x00\xfe\xff"
    sixteen_k = np.zeros(16_000, np.int16)
    assert len(to_pcm16_bytes(sixteen_k, frame_rate=16_000)) == 24_000 * 2


def test_resampling_preserves_a_tone() -> None:
    t = np.arange(48_000) / 48_000
    tone = (np.sin(2 * np.pi * 440 * t) * 10_000).astype(np.int16)
    out = resample_int16(tone, 48_000, 24_000)
    assert len(out) == 24_000
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1


def test_wav_round_trip_and_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    samples = np.array([[1, 2], [3, 4], [-5, -6]], np.int16)
    data = write_wav(samples, 16_000, 2)
    frames, rate, channels = read_audio(data)
    assert (rate, channels) == (16_000, 2)
    assert frames.tolist() == samples.tolist()
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    assert AudioInput.from_file(path).frame_rate == 16_000
    with pytest.raises(AudioFormatError, match="not an audio format this decoder"):
        read_audio(b"this is not audio at all")
    with pytest.raises(AudioFormatError, match="contains no audio frames"):
        read_audio(write_wav(np.zeros(0, np.int16), 24_000))
    with pytest.raises(AudioFormatError, match="cannot open file"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioFormatError, match=r"is empty \(0 bytes\)"):
        read_audio(b"")


def test_audio_input_reference_api() -> None:
    audio = AudioInput(np.array([0.5, -0.5], np.float32))
    name, handle, ctype = audio.to_audio_file()
    assert (name, ctype) == ("audio.wav", "audio/wav")
    frames, rate, _ = read_audio(handle.getvalue())
    assert rate == 24_000 and frames[:, 0].tolist() == [16384, -16384]
    assert base64.b64decode(audio.to_base64()) == np.array([16384, -16384], "<i2").tobytes()
    assert re.fullmatch(r"AudioInput\(2 frames, float32, 24000 Hz, 1 ch\)", repr(audio))
    with pytest.raises(AudioFormatError, match="sample_width=4"):
        AudioInput(np.zeros(2, np.int16), sample_width=4)


def test_chunks_cover_the_input() -> None:
    pcm = bytes(range(256)) * 100
    chunks = list(iter_pcm16_chunks(pcm, 20))
    assert b"".join(chunks) == pcm
    assert all(len(c) == 960 for c in chunks[:-1])
    assert pcm16_duration_ms(48_000) == 1000.0


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int16, st.integers(1, 2000)), st.sampled_from([8000, 16000, 24000, 44100]))
def test_int16_wav_round_trip_is_exact(samples: np.ndarray, rate: int) -> None:
    frames, got_rate, channels = read_audio(write_wav(samples, rate))
    assert (got_rate, channels) == (rate, 1)
    assert np.array_equal(frames[:, 0], samples)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.integers(1, 500),
        elements=st.floats(-4, 4, allow_nan=False, width=32),
    )
)
def test_float_to_int16_stays_in_range_and_keeps_sign(samples: np.ndarray) -> None:
    out = to_mono_int16(samples)
    assert out.dtype == np.int16 and len(out) == len(samples)
    assert np.all(np.abs(out.astype(np.int32)) <= 32767)
    assert np.all(np.sign(out[np.abs(samples) > 1e-4]) == np.sign(samples[np.abs(samples) > 1e-4]))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4000), st.sampled_from([8000, 16000, 22050, 44100, 48000]))
def test_resampled_length_matches_the_rate_ratio(n: int, rate: int) -> None:
    out = resample_int16(np.zeros(n, np.int16), rate, 24_000)
    assert abs(len(out) - n * 24_000 / rate) <= 1
