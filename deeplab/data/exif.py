"""EXIF orientation inside TensorFlow graphs (records, TFDS, serving), as image viewers apply it.

Phones store a photo's pixels as the sensor read them and say how to turn them in the EXIF
Orientation tag (0x0112); viewers and annotation tools show the turned image, so masks are
drawn on it. ``tf.io.decode_image`` ignores the tag. :func:`exif_orientation` reads it from
encoded JPEG (APP1 "Exif") or PNG (eXIf chunk) bytes with plain tensor ops, so it runs in
tf.data and in a SavedModel on every device; :func:`apply_orientation` turns the decoded
pixels. The converters do the same with PIL (``ImageOps.exif_transpose``) before writing.
"""

from __future__ import annotations

import tensorflow as tf

ORIENTATION_TAG = 0x0112
_SEARCH_BYTES = 65536  # EXIF lives in the first APP1 segment (at most 64 KB) or an early chunk
_MAX_ENTRIES = 64  # IFD0 entries examined; real files have about a dozen
# (marker bytes, offset from the marker to the TIFF header)
_MARKERS = ((b"Exif\x00\x00", 6), (b"eXIf", 4))


def _find(data: tf.Tensor, pattern: bytes) -> tf.Tensor:
    """Index of the first occurrence of ``pattern`` in the int32 byte vector, or -1."""
    n = tf.size(data) - len(pattern) + 1
    hits = tf.ones([tf.maximum(n, 0)], tf.bool)
    for i, value in enumerate(pattern):
        hits = tf.logical_and(hits, tf.equal(data[i:i + tf.maximum(n, 0)], value))
    positions = tf.where(hits)[:, 0]
    return tf.cond(tf.size(positions) > 0, lambda: tf.cast(positions[0], tf.int32),
                   lambda: tf.constant(-1, tf.int32))


def exif_orientation(encoded: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation (1-8) of one encoded image; 1 when absent or unreadable.

    Args:
        encoded: a scalar ``tf.string`` holding a JPEG or PNG file.
    """
    head = tf.strings.substr(encoded, 0, _SEARCH_BYTES)
    data = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int32)
    size = tf.size(data)

    padded = tf.concat([data, [-1]], 0)  # so that a gather never meets an empty vector

    def byte(index):
        inside = tf.logical_and(index >= 0, index < size)
        return tf.where(inside, tf.gather(padded, tf.clip_by_value(index, 0, size)), -1)

    tiff = tf.constant(-1, tf.int32)
    for pattern, offset in reversed(_MARKERS):  # the first marker wins
        position = _find(data, pattern)
        tiff = tf.where(position >= 0, position + offset, tiff)
    little = tf.logical_and(tf.equal(byte(tiff), 0x49), tf.equal(byte(tiff + 1), 0x49))
    big = tf.logical_and(tf.equal(byte(tiff), 0x4D), tf.equal(byte(tiff + 1), 0x4D))

    def u16(index):
        a, b = byte(index), byte(index + 1)
        return tf.where(little, a + 256 * b, 256 * a + b)

    def u32(index):
        low, high = u16(index), u16(index + 2)
        return tf.where(little, low + 65536 * high, 65536 * low + high)

    magic_ok = tf.equal(u16(tiff + 2), 42)
    ifd = tiff + u32(tiff + 4)
    count = tf.minimum(u16(ifd), _MAX_ENTRIES)
    entries = ifd + 2 + 12 * tf.range(_MAX_ENTRIES)
    tags, values = u16(entries), u16(entries + 8)  # SHORT values sit in the first 2 bytes
    is_orientation = tf.logical_and(tf.equal(tags, ORIENTATION_TAG),
                                    tf.range(_MAX_ENTRIES) < count)
    found = tf.reduce_any(is_orientation)
    value = tf.reduce_max(tf.where(is_orientation, values, 0))
    valid = tf.logical_and(tf.logical_or(little, big), magic_ok)
    valid = tf.logical_and(tf.logical_and(valid, found), tf.logical_and(value >= 1, value <= 8))
    return tf.where(valid, value, 1)


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Turns decoded ``[H, W, C]`` pixels as EXIF ``orientation`` (1-8) says, like PIL's
    ``ImageOps.exif_transpose``: 6 is a photo taken with the phone upright (turned 90°
    clockwise for display), 3 upside down, 8 turned 90° counter-clockwise; 2, 4, 5, 7 mirror.
    """
    def transpose(x):
        return tf.transpose(x, [1, 0, 2])

    branches = [
        lambda: image,
        lambda: tf.reverse(image, [1]),
        lambda: tf.reverse(image, [0, 1]),
        lambda: tf.reverse(image, [0]),
        lambda: transpose(image),
        lambda: tf.image.rot90(image, k=3),
        lambda: tf.reverse(transpose(image), [0, 1]),
        lambda: tf.image.rot90(image, k=1),
    ]
    index = tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7)
    return tf.switch_case(index, branches)


def decode_oriented(encoded: tf.Tensor, channels: int = 3) -> tf.Tensor:
    """``tf.io.decode_image`` (JPEG, PNG, BMP, GIF first frame) with the EXIF orientation
    applied: ``[H, W, channels]`` uint8 as a viewer shows it."""
    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    return apply_orientation(image, exif_orientation(encoded))


def encoded_image_size(encoded: tf.Tensor) -> tf.Tensor:
    """[height, width] of an encoded PNG, JPEG, GIF, BMP or WebP (every format
    ``tf.io.decode_image`` reads) from its header, before anything is decoded (a 10 MB PNG
    can decode to 432 MB, a 34-byte WebP to 805 MB); [-1, -1] for other formats, which a
    caller refuses.

    Args:
        encoded: a scalar ``tf.string``.
    """
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, 0, 32), tf.uint8), tf.int64)
    head = tf.pad(head, [[0, 32 - tf.shape(head)[0]]])

    def big_endian(start, count):
        return tf.reduce_sum(head[start:start + count] * tf.constant(
            [256 ** (count - 1 - i) for i in range(count)], tf.int64))

    def little_endian(start, count):
        return tf.reduce_sum(head[start:start + count] * tf.constant(
            [256 ** i for i in range(count)], tf.int64))

    def starts_with(magic: bytes):
        return tf.reduce_all(tf.equal(head[:len(magic)], list(magic)))

    def jpeg():
        shape = tf.io.extract_jpeg_shape(encoded, output_type=tf.int64)
        return tf.stack([shape[0], shape[1]])

    def signed(value):  # BMP stores a negative height for top-down rows
        return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))

    def webp(chunk: bytes):
        """RIFF....WEBP, then the first chunk: ``VP8 `` (lossy: 14-bit sizes in the frame
        header), ``VP8L`` (lossless: 14-bit sizes - 1 packed after the 0x2f signature) or
        ``VP8X`` (extended: 24-bit canvas sizes - 1)."""
        return tf.logical_and(tf.logical_and(starts_with(b"RIFF"),
                                             tf.reduce_all(tf.equal(head[8:12], list(b"WEBP")))),
                              tf.reduce_all(tf.equal(head[12:16], list(chunk))))

    def vp8l():
        b21, b22, b23, b24 = head[21], head[22], head[23], head[24]
        width = 1 + b21 + (b22 % 64) * 256
        height = 1 + b22 // 64 + b23 * 4 + (b24 % 16) * 1024
        return tf.stack([height, width])

    return tf.case([
        (starts_with(b"\x89PNG"), lambda: tf.stack([big_endian(20, 4), big_endian(16, 4)])),
        (starts_with(b"\xff\xd8"), jpeg),
        (starts_with(b"GIF8"), lambda: tf.stack([little_endian(8, 2), little_endian(6, 2)])),
        (starts_with(b"BM"), lambda: tf.stack([signed(little_endian(22, 4)),
                                               little_endian(18, 4)])),
        (webp(b"VP8 "), lambda: tf.stack([little_endian(28, 2) % 16384,
                                          little_endian(26, 2) % 16384])),
        (webp(b"VP8L"), vp8l),
        (webp(b"VP8X"), lambda: tf.stack([1 + little_endian(27, 3), 1 + little_endian(24, 3)])),
    ], default=lambda: tf.constant([-1, -1], tf.int64))
