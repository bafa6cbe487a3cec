from __future__ import annotations

import importlib
import types

import pytest

import trio_stt


def public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations"}
    } | ({"__version__"} if hasattr(module, "__version__") else set())


@pytest.mark.parametrize("name", ["trio_stt", "trio_stt.server"])
def test_all_is_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__)), "duplicates in __all__"
    assert set(module.__all__) == public_names(module)


def test_every_export_is_documented() -> None:
    for name in trio_stt.__all__:
        obj = getattr(trio_stt, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__doc__, f"{name} has no docstring"


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        trio_stt.ProtocolError("x")
    assert isinstance(trio_stt.RemoteProtocolError("x"), trio_stt.ProtocolError)
