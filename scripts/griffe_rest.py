"""A Griffe extension that renders the reST in trio-stt's docstrings as Markdown.

The docstrings are written for ``help()`` and for editors, in the reST that Python's own
documentation uses: ``:class:`StreamedAudioInput``` roles and ``::`` literal blocks. The
docs site renders Markdown, where those come out as stray colons and backticks. Rather than
write every docstring twice, the site's build rewrites them as it reads them: a role
becomes a cross-reference when it names something in the API reference (code otherwise),
and a ``::`` block becomes a fenced Python block.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

import trio_stt

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|data|exc|mod|obj):`(~?)([^`]+)`")
_PUBLIC = set(trio_stt.__all__)


def _reference(match: re.Match[str]) -> str:
    short, target = match.group(1) == "~", match.group(2).strip()
    target = target.removeprefix("trio_stt.")
    shown = target.rsplit(".", 1)[-1] if short else target
    if match.group(0).startswith((":meth:", ":func:")):
        shown += "()"
    head = target.split(".", 1)[0]
    if head in _PUBLIC:
        return f"[`{shown}`][trio_stt.{target}]"
    return f"`{shown}`"


def _literal_blocks(text: str) -> str:
    """``Intro::`` followed by an indented block -> ``Intro:`` and a fenced block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and i + 1 < len(lines) and not lines[i + 1].strip():
            indent = len(line) - len(line.lstrip())
            block: list[str] = []
            j = i + 2
            while j < len(lines) and (
                not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
            ):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            if block:
                intro = line.rstrip()[:-1]
                pad = " " * indent
                body = textwrap.indent(textwrap.dedent("\n".join(block)), pad)
                out += [intro, "", f"{pad}```python", body, f"{pad}```", ""]
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def markdown_from_rest(text: str) -> str:
    return _ROLE.sub(_reference, _literal_blocks(text))


class RestToMarkdown(griffe.Extension):
    """Rewrites each docstring once, as Griffe loads it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_from_rest(obj.docstring.value)
