"""Decoding every format the CLI, the file helpers and the local server accept."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
import trio

from trio_stt import (
    AudioFormatError,
    AudioInput,
    StreamedAudioInput,
    STTModelSettings,
    feed_from_file,
    read_audio,
)
from trio_stt._audio_files import audio_duration, encode_flac
from trio_stt.testing import ScriptedRecognizer, open_fake_server

from .helpers import hear
from .helpers import tone as turn_tone

RATE = 24_000

# (container, codec, extension, lossless): every WAV variant sox and others write, and the
# compressed formats people record in.
FORMATS = [
    ("WAV", "PCM_16", "wav", True),
    ("WAVEX", "PCM_24", "wav", True),  # sox's 24-bit WAV: WAVE_FORMAT_EXTENSIBLE (65534)
    ("WAV", "PCM_U8", "wav", False),
    ("WAV", "PCM_32", "wav", True),
    ("WAV", "FLOAT", "wav", True),  # sox -e floating-point -b 32
    ("WAV", "DOUBLE", "wav", True),
    ("AIFF", "FLOAT", "aiff", True),
    ("FLAC", "PCM_16", "flac", True),
    ("OGG", "VORBIS", "ogg", False),
    ("OGG", "OPUS", "ogg", False),
    ("MP3", "MPEG_LAYER_III", "mp3", False),
]


def tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * 440 * t) * 12_000).astype(np.int16)


def encode(samples: np.ndarray, container: str, codec: str) -> bytes:
    """*samples* as an encoder writes them: from float in [-1, 1], as sox and recorders do
    (int16 written into a float file would be stored unscaled, hiding a decoder's bug)."""
    out = io.BytesIO()
    soundfile.write(out, samples.astype(np.float32) / 32768, RATE, format=container, subtype=codec)
    return out.getvalue()


@pytest.mark.parametrize(("container", "codec", "ext", "lossless"), FORMATS)
def test_every_format_decodes_to_the_same_sound(container, codec, ext, lossless, tmp_path) -> None:  # type: ignore[no-untyped-def]
    original = tone()
    path = tmp_path / f"tone.{ext}"
    path.write_bytes(encode(original, container, codec))
    decoded = read_audio(path)
    assert (decoded.rate, decoded.channels) == (RATE, 1)
    # Lossy codecs add delay and padding; compare loudness, and exact samples when lossless.
    assert abs(len(decoded.frames) - len(original)) < RATE * 0.1
    if lossless:
        peak = int(np.abs(decoded.frames).max())
        assert 11_900 < peak < 12_100, f"decoded at the wrong level: peak {peak}, not 12,000"
        assert np.abs(decoded.frames[:, 0].astype(int) - original).max() <= 1
    else:
        rms = float(np.sqrt(np.mean(decoded.frames.astype(float) ** 2)))
        assert 7_000 < rms < 10_000  # a 12,000-peak sine has an RMS of 8,485
    assert audio_duration(path) == pytest.approx(1.0, abs=0.1)


def test_stereo_and_other_rates_keep_their_shape() -> None:
    stereo = np.stack([tone(0.5), -tone(0.5)], axis=1)
    out = io.BytesIO()
    soundfile.write(out, stereo, 44_100, format="FLAC")
    decoded = read_audio(out.getvalue())
    assert (decoded.rate, decoded.channels, decoded.frames.shape[1]) == (44_100, 2, 2)
    assert decoded.mono(16_000).shape == (round(len(stereo) * 16_000 / 44_100),)


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "MP4/M4A"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 12, "WebM"),
    ],
)
def test_formats_it_cannot_read_are_named_with_what_it_can(head: bytes, named: str) -> None:
    with pytest.raises(AudioFormatError) as info:
        read_audio(head + b"\x00" * 200)
    message = str(info.value)
    assert named in message
    assert "FLAC" in message and "MP3" in message and "Ogg Opus" in message


def test_flac_is_lossless_and_smaller_than_wav() -> None:
    samples = tone(2.0)
    flac = encode_flac(samples, RATE)
    assert len(flac) < samples.nbytes
    assert np.array_equal(read_audio(flac).frames[:, 0], samples)


def test_audio_input_reads_any_format(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "t.ogg"
    path.write_bytes(encode(tone(), "OGG", "OPUS"))
    audio = AudioInput.from_file(path)
    assert audio.frame_rate == RATE and audio.duration == pytest.approx(1.0, abs=0.1)


async def test_a_float_wav_is_heard_by_the_server_and_as_a_live_stream(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The defect: ``sox talk.wav -e floating-point -b 32 f32.wav`` became an empty
    transcript, by file and by stream, because floats were read as int16 unscaled."""
    path = tmp_path / "f32.wav"
    soundfile.write(path, turn_tone(3, 1.0), RATE, subtype="FLOAT")
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear)) as server:
        async with server.model("gpt-4o-transcribe") as model:
            result = await model.transcribe_file(path)
            assert result.text == "turn 3 1.0s"
            audio = StreamedAudioInput()
            manual = STTModelSettings(turn_detection="manual")
            async with model.create_session(audio, manual) as session:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(lambda: feed_from_file(audio, path, realtime=False))
                    turns = [text async for text in session.transcribe_turns()]
        assert turns == ["turn 3 1.0s"]
