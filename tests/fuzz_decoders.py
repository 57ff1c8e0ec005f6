"""Fuzzes the record parser and the image / mask decoders (run as a subprocess by
test_reliability.py, so a crash or a hang fails the test instead of killing the suite).

Usage: python fuzz_decoders.py <workdir> <cases per target> <seed>
Prints one JSON line: per target, how many cases decoded, how many were clean errors naming
their file, and the first few anything-else failures.
"""

import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from deeplab.data import image_io, records
from deeplab.data.errors import DataError

workdir, cases, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)


def encode(array, fmt, **options):
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    if options.pop("palette", False):
        image = image.convert("P")
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
label = rng.integers(0, 4, (24, 32), dtype=np.uint8)
IMAGES = [encode(pixels, "PNG"), encode(pixels, "JPEG", quality=90), encode(pixels, "BMP"),
          encode(label, "PNG"), encode(label, "PNG", palette=True)]


def png_with_size(width, height):
    """A PNG whose IHDR (with a valid CRC) claims another size than its data has."""
    data = bytearray(IMAGES[0])
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


def jpeg_with_size(width, height):
    data = bytearray(IMAGES[1])
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def mutate(data: bytes) -> bytes:
    data = bytearray(data)
    kind = rng.integers(0, 4)
    if kind == 0:  # truncated
        return bytes(data[: rng.integers(0, len(data))])
    if kind == 1:  # bit flips
        for _ in range(rng.integers(1, 9)):
            position = rng.integers(0, len(data))
            data[position] ^= 1 << int(rng.integers(0, 8))
        return bytes(data)
    if kind == 2:  # a run of random bytes
        start = rng.integers(0, len(data))
        length = int(rng.integers(1, 64))
        data[start:start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        return bytes(data)
    return png_with_size(*rng.choice([[2**31 - 1, 2**31 - 1], [100000, 100000], [0, 24],
                                      [32, 5000]])) if rng.random() < 0.5 else \
        jpeg_with_size(*rng.choice([[65535, 65535], [0, 0], [32, 4000]]))


results = {}


def check(target: str, run, where: str):
    entry = results.setdefault(target, {"decoded": 0, "clean_errors": 0, "other": []})
    try:
        run()
        entry["decoded"] += 1
    except DataError as error:
        if where in str(error):
            entry["clean_errors"] += 1
        else:
            entry["other"].append(f"DataError without the file: {error}")
    except Exception as error:  # anything else is a finding
        entry["other"].append(f"{type(error).__name__}: {error}"[:300])


for index in range(cases):
    base = IMAGES[index % len(IMAGES)]
    data = mutate(base)
    where = f"case{index}.img"
    check("image", lambda d=data, w=where: image_io.prepare_image(d, w), where)
    path = workdir / f"mask{index % 50}.png"
    path.write_bytes(data)
    check("mask", lambda p=path: image_io.read_index_mask(str(p)), str(path))

# Records: valid examples mutated, and examples with wrong types or missing keys.
valid = records.image_seg_to_example(IMAGES[0], "x", 24, 32, IMAGES[3])
wrong = [
    records.encode_example({records.IMAGE_ENCODED: 5, records.IMAGE_HEIGHT: 24,
                            records.IMAGE_WIDTH: 32}),
    records.encode_example({records.IMAGE_ENCODED: IMAGES[0], records.IMAGE_HEIGHT: b"24",
                            records.IMAGE_WIDTH: 32}),
    records.encode_example({records.IMAGE_HEIGHT: 24, records.IMAGE_WIDTH: 32}),
    records.encode_example({records.IMAGE_ENCODED: IMAGES[0], records.IMAGE_HEIGHT: 2**40,
                            records.IMAGE_WIDTH: 32}),
]
for index in range(cases):
    data = wrong[index % len(wrong)] if index % 5 == 0 else mutate(valid)
    where = f"shard.tfrecord record {index}"
    check("record", lambda d=data, w=where: records.parse_example(d, w), where)

# Shard files: framing (lengths, CRCs) truncated or flipped.
shard = workdir / "good.tfrecord"
frame = struct.pack("<Q", len(valid))
with open(shard, "wb") as f:
    for _ in range(4):
        f.write(frame + struct.pack("<I", records.masked_crc32c(frame)) + valid +
                struct.pack("<I", records.masked_crc32c(valid)))
good = shard.read_bytes()
for index in range(max(1, cases // 10)):
    path = workdir / f"shard{index % 20}.tfrecord"
    path.write_bytes(mutate(good) if index % 3 else good[: rng.integers(1, len(good))])
    check("shard", lambda p=path: records.check_record_framing(str(p)), str(path))

print(json.dumps(results))
