"""What ``trio-stt transcribe`` writes, and where: stdout, ``-o FILE`` or ``--output-dir``.

The format is the API's ``response_format``, chosen by ``--format`` or else by the output
file's extension, as whisper's users expect (``-o talk.srt``). What is written is what the
server said (the subtitle file, the ``verbose_json`` body with its segments and words), or
the stitched equivalent when a long file went in pieces.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._errors import ConfigurationError
from ._results import Transcription
from ._settings import MODEL_CAPABILITIES, capabilities_for

__all__ = ["FORMATS", "format_for", "output_path", "render", "formats_help"]

FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")

_EXTENSIONS = {"txt": "text", "text": "text", "json": "json", "srt": "srt", "vtt": "vtt"}
_EXTENSION_OF = {"text": "txt", "srt": "srt", "vtt": "vtt"}  # the JSON formats: json


def formats_help() -> str:
    """Which models produce each format, from the one table of capabilities."""
    file_models = {name: caps for name, caps in MODEL_CAPABILITIES.items() if caps.rest}
    groups: dict[tuple[str, ...], list[str]] = {}
    for fmt in FORMATS:
        models = tuple(name for name, caps in file_models.items() if fmt in caps.rest_formats)
        groups.setdefault(models, []).append(fmt)
    return "; ".join(
        f"{', '.join(formats)}: "
        + ("every file model" if len(models) == len(file_models) else ", ".join(models))
        for models, formats in groups.items()
    )


def format_for(requested: str | None, output: str | None, model: str) -> str:
    """``--format`` if given, else the output file's extension, else json."""
    if requested is not None:
        return requested
    if output is None:
        return "json"
    ext = Path(output).suffix.lower().lstrip(".")
    if ext not in _EXTENSIONS:
        raise ConfigurationError(
            f"cannot tell the format from -o {output!r}; name it .txt, .json, .srt or .vtt, "
            "or pass --format"
        )
    fmt = _EXTENSIONS[ext]
    if fmt == "json" and "verbose_json" in capabilities_for(model).rest_formats:
        return "verbose_json"  # a .json file from whisper-1 gets the timings too
    return fmt


def output_path(source: str, output: str | None, output_dir: str | None, fmt: str) -> Path | None:
    """Where to write: ``-o`` as given, or ``--output-dir`` / the input's name; None: stdout."""
    if output is not None:
        return Path(output)
    if output_dir is None:
        return None
    stem = "stdin" if source == "-" else Path(source).stem
    return Path(output_dir) / f"{stem}.{_EXTENSION_OF.get(fmt, 'json')}"


def render(result: Transcription, fmt: str, as_json: bool, *, plain: bool = False) -> str:
    """The text to write: ``--json`` gets one object with every field that came back (none
    that did not); a JSON format gets the server's body, unless *plain* (no ``--format``
    and no file: the text alone, for reading)."""
    if as_json:
        body = result.to_dict() | {"request_id": result.request_id}
        return json.dumps({key: value for key, value in body.items() if value is not None})
    if fmt in ("json", "verbose_json", "diarized_json") and not plain:
        return result.raw.strip() or json.dumps(result.to_dict())
    return result.text


def write_output(path: Path | None, text: str) -> None:
    """Write *text* to *path* (its folder is made), or to stdout."""
    if path is None:
        print(text, flush=True)
        return
    if path.parent and not path.parent.exists():
        os.makedirs(path.parent, exist_ok=True)
    path.write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
