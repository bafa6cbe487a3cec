from __future__ import annotations

import importlib
import types

import pytest

import trio_stt


def our_public_objects(module: types.ModuleType) -> set[str]:
    """Public classes and functions of trio-stt reachable from *module*."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (isinstance(value, type) or callable(value))
        and getattr(value, "__module__", "").startswith("trio_stt")
    }


@pytest.mark.parametrize("name", ["trio_stt", "trio_stt.server", "trio_stt.testing"])
def test_all_is_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    assert all(hasattr(module, n) for n in exported), "__all__ names something missing"
    assert our_public_objects(module) <= set(exported), "public but not in __all__"
    assert set(exported) - our_public_objects(module) <= {"__version__", "MODEL_CAPABILITIES"}


@pytest.mark.parametrize("name", ["trio_stt", "trio_stt.server", "trio_stt.testing"])
def test_every_export_is_documented(name: str) -> None:
    module = importlib.import_module(name)
    for export in module.__all__:
        obj = getattr(module, export)
        if isinstance(obj, type) or callable(obj):
            # dataclasses without a docstring get their signature as __doc__
            generated = f"{getattr(obj, '__name__', export)}("
            assert obj.__doc__ and not obj.__doc__.startswith(generated), f"{export}: no docstring"


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        trio_stt.ProtocolError("x")
    assert isinstance(trio_stt.RemoteProtocolError("x"), trio_stt.ProtocolError)
