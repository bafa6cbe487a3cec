"""A client's WebSocket text frame, built in one pass (RFC 6455 §5.2).

The session sends one message every 100 ms per stream, and at hundreds of streams the cost
of each is what decides the session's CPU. Going through trio-websocket and wsproto for a
frame means an event object, a frame object, three copies of the payload and a lock taken
with two schedule points. The frame itself is a header, a masking key and the payload XORed
with the key, which numpy does in one pass over 32-bit words. The key comes from
``os.urandom``, as RFC 6455 §5.3 asks (unpredictable, fresh for each frame).
"""

from __future__ import annotations

import os
import struct

import numpy as np

__all__ = ["masked_text_frame"]

_FIN_TEXT = 0x81  # FIN, opcode 1 (text)
_MASKED = 0x80


def masked_text_frame(message: str) -> bytes:
    """One final, masked text frame carrying *message*."""
    payload = message.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _FIN_TEXT, _MASKED | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN_TEXT, _MASKED | 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, _MASKED | 127, size)
    key = os.urandom(4)
    pad = -size % 4
    words = np.frombuffer(payload + b"\0" * pad if pad else payload, dtype=np.uint32)
    masked: bytes = (words ^ np.frombuffer(key, dtype=np.uint32)[0]).tobytes()
    return header + key + (masked[:size] if pad else masked)
