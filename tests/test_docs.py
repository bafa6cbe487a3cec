"""The documentation: it builds, and every public name is in the API reference."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = ["trio_stt", "trio_stt.server", "trio_stt.testing"]


@pytest.fixture(scope="module")
def api_page(tmp_path_factory: pytest.TempPathFactory) -> str:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    return (site / "api" / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_an_entry_in_the_api_reference(
    api_page: str, module_name: str
) -> None:
    documented = set(re.findall(r'id="trio_stt(?:\.\w+)*\.(\w+)"', api_page))
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if name not in documented]
    if module_name == "trio_stt":  # a version string and a table are described, not rendered
        missing = [n for n in missing if n not in {"__version__", "MODEL_CAPABILITIES"}]
    assert not missing, f"not in docs/api.md: {missing}"


def test_internal_helpers_stay_out_of_the_reference(api_page: str) -> None:
    assert "exception_leaves" not in api_page


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert pages and all(page in nav for page in pages)


def test_rest_in_docstrings_is_rendered_as_markdown() -> None:
    """The docs build rewrites roles and ``::`` blocks (scripts/griffe_rest.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "griffe_rest", Path(__file__).parent.parent / "scripts" / "griffe_rest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (
        "Use :class:`StreamedAudioInput` or :meth:`~trio_stt.OpenAISTTModel.transcribe_file`,"
        " not :class:`trio.Nursery`::\n\n    async with x:\n        pass\n\nThen more."
    )
    assert module.markdown_from_rest(text) == (
        "Use [`StreamedAudioInput`][trio_stt.StreamedAudioInput] or "
        "[`transcribe_file()`][trio_stt.OpenAISTTModel.transcribe_file], not `trio.Nursery`:"
        "\n\n```python\nasync with x:\n    pass\n```\n\nThen more."
    )


def test_the_api_reference_shows_no_restructuredtext_markup(api_page: str) -> None:
    """mkdocstrings reads Markdown: a reST ``::`` or double backquote shows up as it is."""
    text = re.sub(r"<[^>]+>", "", api_page)
    assert "``" not in text
    assert not re.search(r"::\s*$", text, re.MULTILINE)
