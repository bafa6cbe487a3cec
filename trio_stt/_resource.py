"""``async with`` for objects whose only cleanup is ``aclose()`` (trio's AsyncResource shape)."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

import trio

__all__ = ["AsyncClosing"]

_Self = TypeVar("_Self", bound="AsyncClosing")


class AsyncClosing:
    """Mixin: ``async with obj:`` returns *obj* and calls ``await obj.aclose()`` on exit."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _Self) -> _Self:
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
