"""The supported Pythons: run the suite on each, and install the built package into each.

``make test`` runs everything once on the Python of ``.venv``. This runs the rest of the
matrix: the floor that ``requires-python`` names and the newest interpreter on the machine
(on ``PATH`` as ``python3.N``, or under pyenv). A Python that is not on the machine is
skipped, and says so.

    python scripts/pythons.py suite     # the test suite on the floor and the newest Python
    python scripts/pythons.py package   # build, check, install into fresh venvs, run the demo

Uses the standard library only, apart from ``build`` and ``twine`` for ``package``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEWEST_MINOR_TRIED = 20

# What a packager needs from the sdist besides the package: the tests and the docs sources.
SDIST_MUST_HOLD = ("tests/test_session.py", "tests/conftest.py", "docs/index.md", "mkdocs.yml")
WHEEL_MUST_HOLD = ("trio_stt/py.typed", "trio_stt/samples/door.wav", "entry_points.txt")


def floor_minor() -> int:
    """The lowest Python 3 minor version ``requires-python`` allows."""
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    found = re.fullmatch(r">=\s*3\.(\d+)", spec.strip())
    if found is None:
        raise SystemExit(f"cannot read a floor from requires-python = {spec!r}")
    return int(found.group(1))


def interpreters() -> dict[int, Path]:
    """Each Python 3 minor version found on this machine, with one interpreter for it."""
    candidates: list[Path] = []
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    for version in sorted(Path(pyenv_root, "versions").glob("3.*"), reverse=True):
        candidates.append(version / "bin" / "python3")
    for minor in range(NEWEST_MINOR_TRIED, 6, -1):
        if (on_path := shutil.which(f"python3.{minor}")) is not None:
            candidates.append(Path(on_path))
    found: dict[int, Path] = {}
    for candidate in candidates:
        runs_as = minor_of(candidate)
        if runs_as is not None and runs_as not in found:
            found[runs_as] = candidate
    return found


def minor_of(python: Path) -> int | None:
    """The minor version *python* runs, or None if it does not run (a pyenv shim may not)."""
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor = out.stdout.split()
    return int(minor) if major == "3" else None


def targets() -> list[tuple[int, Path]]:
    """The floor and the newest Python here; a missing floor is said, not hidden."""
    floor, found = floor_minor(), interpreters()
    supported = {minor: path for minor, path in found.items() if minor >= floor}
    chosen: dict[int, Path] = {}
    if floor in supported:
        chosen[floor] = supported[floor]
    else:
        say(f"Python 3.{floor} (the floor) is not on this machine: skipped")
    if supported:
        newest = max(supported)
        chosen[newest] = supported[newest]
    return sorted(chosen.items())


def say(text: str) -> None:
    print(f"pythons: {text}", file=sys.stderr, flush=True)


def run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in args], cwd=cwd, env=env, check=True)


def venv(python: Path, where: Path) -> Path:
    """A venv at *where* made by *python*, with a current pip; its ``bin`` folder."""
    if not (where / "bin" / "python").exists():
        run(python, "-m", "venv", where)
    pip = (where / "bin" / "python", "-m", "pip", "--quiet", "--disable-pip-version-check")
    run(*pip, "install", "--upgrade", "pip")
    return where / "bin"


def suite(pytest_args: list[str]) -> None:
    """The test suite on each target Python but the one running this (``.venv``'s)."""
    for minor, python in targets():
        if minor == sys.version_info.minor:
            say(f"Python 3.{minor}: the suite runs in .venv")
            continue
        where = ROOT / f".venv-3.{minor}"
        stamp = where / ".installed"
        pyproject = ROOT / "pyproject.toml"
        if not stamp.exists() or stamp.stat().st_mtime < pyproject.stat().st_mtime:
            say(f"Python 3.{minor}: installing trio-stt[dev] into {where.name}")
            bin_ = venv(python, where)
            run(bin_ / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "-e", ".[dev]", env=quiet_setuptools())  # fmt: skip
            stamp.touch()
        say(f"Python 3.{minor}: the suite")
        started = time.monotonic()
        run(where / "bin" / "python", "-m", "pytest", *pytest_args)
        say(f"Python 3.{minor}: the suite passed in {time.monotonic() - started:.0f} s")


def quiet_setuptools() -> dict[str, str]:
    """setuptools warns about every editable install, at length; the warning is not ours."""
    return os.environ | {"PYTHONWARNINGS": "ignore:Editable installation"}


def package() -> None:
    """Build the sdist and the wheel, check them, and run the demo from a fresh install."""
    with tempfile.TemporaryDirectory(prefix="trio-stt-package-") as tmp:
        dist = Path(tmp, "dist")
        run(sys.executable, "-m", "build", "--quiet", "--outdir", dist, ROOT)
        sdist, wheel = next(dist.glob("*.tar.gz")), next(dist.glob("*.whl"))
        run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
        check_contents(sdist, wheel)
        for minor, python in targets():
            say(f"Python 3.{minor}: installing {wheel.name}[server] into a fresh venv")
            bin_ = venv(python, Path(tmp, f"venv-3.{minor}"))
            run(bin_ / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                f"{wheel}[server]")  # fmt: skip
            outside = Path(tmp)  # not the repository: the installed package, not the source
            run(bin_ / "trio-stt", "--version", cwd=outside)
            run(bin_ / "trio-stt", "demo", cwd=outside)


def check_contents(sdist: Path, wheel: Path) -> None:
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    with zipfile.ZipFile(wheel) as zipped:
        in_wheel = zipped.namelist()
    missing = [name for name in SDIST_MUST_HOLD if name not in in_sdist]
    missing += [name for name in WHEEL_MUST_HOLD if not any(n.endswith(name) for n in in_wheel)]
    if missing:
        raise SystemExit(f"the package lacks {', '.join(missing)}")
    say(f"{sdist.name} and {wheel.name} hold what they must")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["suite", "package"])
    parser.add_argument("pytest_args", nargs="*", help="for suite: passed to pytest")
    args = parser.parse_args()
    try:
        if args.what == "suite":
            suite(args.pytest_args)
        else:
            package()
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"pythons: failed: {' '.join(map(str, exc.cmd))}") from None


if __name__ == "__main__":
    main()
