from __future__ import annotations

import base64
import importlib.util
import io

import numpy as np
import pytest

from aslmig.reports.png import PNG_SIGNATURE, data_uri, encode_png


@pytest.mark.parametrize("shape", [(7, 5, 3), (4, 9), (3, 2, 4), (1, 1, 3)])
def test_round_trip(png_decoder, shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    assert np.array_equal(png_decoder(encode_png(image)), image)


def test_round_trip_of_a_non_contiguous_view(png_decoder):
    image = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)[::-1, ::2]
    assert np.array_equal(png_decoder(encode_png(image)), image)


def test_header_and_chunks():
    data = encode_png(np.zeros((3, 4, 3), dtype=np.uint8))
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR"
    assert int.from_bytes(data[16:20], "big") == 4  # width
    assert int.from_bytes(data[20:24], "big") == 3  # height
    assert data.endswith(b"IEND\xaeB`\x82")


@pytest.mark.skipif(importlib.util.find_spec("PIL") is None, reason="Pillow not installed")
def test_pillow_reads_it_when_available():
    from PIL import Image

    image = np.random.default_rng(1).integers(0, 256, size=(11, 13, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(image))).convert("RGB"))
    assert np.array_equal(decoded, image)


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((3, 3, 3), dtype=float), TypeError),
        (np.zeros((3, 3, 2), dtype=np.uint8), ValueError),
        (np.zeros((3,), dtype=np.uint8), ValueError),
        (np.zeros((0, 3, 3), dtype=np.uint8), ValueError),
    ],
)
def test_rejects_bad_images(image, error):
    with pytest.raises(error):
        encode_png(image)


def test_data_uri():
    uri = data_uri(b"\x89PNG-bytes")
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == b"\x89PNG-bytes"
    assert '"' not in uri and "<" not in uri
