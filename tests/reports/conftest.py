"""Fixtures for the report tests: an independent minimal PNG decoder."""

from __future__ import annotations

import base64
import re
import struct
import zlib

import numpy as np
import pytest

_CHANNELS = {0: 1, 2: 3, 6: 4}


def decode_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced PNG whose rows all use filter type 0."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "bad signature"
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        position += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, color, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    assert (depth, compression, filtering, interlace) == (8, 0, 0, 0)
    channels = _CHANNELS[color]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + width * channels
    assert len(raw) == height * stride
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride)
    assert np.all(rows[:, 0] == 0), "only filter type 0 is supported by this decoder"
    pixels = rows[:, 1:].reshape(height, width, channels)
    return pixels[:, :, 0] if channels == 1 else pixels


def decode_data_uri_images(document: str) -> list[np.ndarray]:
    """Decode every ``data:image/png;base64`` image of an HTML document."""
    found = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', document)
    return [decode_png(base64.b64decode(item)) for item in found]


@pytest.fixture
def png_decoder():
    return decode_png


@pytest.fixture
def html_images():
    return decode_data_uri_images
