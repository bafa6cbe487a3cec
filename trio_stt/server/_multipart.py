"""A small, strict ``multipart/form-data`` parser for the transcription endpoint.

The whole body is already in memory (under the size limit), so a split-based parser is
enough; it refuses anything malformed rather than guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["FormData", "UploadedFile", "parse_multipart", "MultipartError"]

_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)="?([^";]*)"?')


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class FormData:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def get_list(self, name: str) -> list[str]:
        return self.fields.get(name + "[]", []) + self.fields.get(name, [])


def boundary_of(content_type: str) -> str:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise MultipartError(f"expected multipart/form-data, got {kind.strip() or 'nothing'}")
    for name, value in _PARAM.findall(";" + params):
        if name.lower() == "boundary" and value:
            return str(value)
    raise MultipartError("multipart/form-data without a boundary")


def parse_multipart(body: bytes, content_type: str) -> FormData:
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise MultipartError("multipart body is truncated or has no closing boundary")
    form = FormData()
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise MultipartError("malformed multipart part framing")
        head, sep, content = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("multipart part without a header/body separator")
        headers = {}
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = dict(_PARAM.findall(headers.get("content-disposition", "")))
        name = params.get("name")
        if not name:
            raise MultipartError("multipart part without a field name")
        if "filename" in params:
            form.files[name] = UploadedFile(
                params["filename"], headers.get("content-type", "application/octet-stream"), content
            )
        else:
            form.fields.setdefault(name, []).append(content.decode("utf-8", errors="replace"))
    return form
