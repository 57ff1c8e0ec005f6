"""The original release's TFRecord format: keys, shard names, and a TF-free example encoder.

The keys and the shard naming are exactly those of the original `build_data.py` and
`build_*_data.py`, so records built by either implementation read in the other.

The encoder writes the `tf.train.Example` protobuf wire format by hand. This keeps the encoding
worker processes free of TensorFlow (a TF import costs seconds and hundreds of MB per process);
`tests/test_data_records.py` checks the bytes parse to the same proto as the TF API builds.
"""

from __future__ import annotations

import glob
import os
import re
import struct

from deeplab.data.errors import DataError

IMAGE_ENCODED = "image/encoded"
IMAGE_FILENAME = "image/filename"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_CHANNELS = "image/channels"
LABEL_ENCODED = "image/segmentation/class/encoded"
LABEL_FORMAT = "image/segmentation/class/format"

# A split whose labels are at least this void (ignore label) gets a warning, in the converter
# and when training starts: it would train on almost nothing.
MOSTLY_VOID = 0.99

SHARD_PATTERN = "%s-%05d-of-%05d.tfrecord"
_SHARD_RE = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.tfrecord$")


def shard_filename(split: str, index: int, num_shards: int) -> str:
    """Returns the original's shard file name, e.g. ``train-00001-of-00004.tfrecord``."""
    return SHARD_PATTERN % (split, index, num_shards)


def parse_shard_filename(name: str) -> tuple[str, int, int] | None:
    """Returns (split, index, num_shards) for a shard file name, or None for other names."""
    match = _SHARD_RE.match(os.path.basename(name))
    if not match:
        return None
    return match.group("split"), int(match.group("index")), int(match.group("total"))


def splits_present(dataset_dir: str) -> list[str]:
    """The splits with shards in ``dataset_dir``, sorted."""
    return sorted({p[0] for f in os.listdir(dataset_dir)
                   if (p := parse_shard_filename(f)) is not None})


def list_shards(dataset_dir: str, split: str) -> list[str]:
    """Lists the record files of `split` in `dataset_dir`, sorted.

    The original reader globs ``<split>-*``; we require the full shard pattern so that a split
    named ``train`` does not also pick up ``train_aug-*`` files.

    Raises:
      DataError: if the directory or the split's records are missing.
    """
    if not os.path.isdir(dataset_dir):
        raise DataError(f"dataset directory {dataset_dir!r} does not exist")
    files = sorted(
        path
        for path in glob.glob(os.path.join(glob.escape(dataset_dir), f"{glob.escape(split)}-*"))
        if (parsed := parse_shard_filename(path)) is not None and parsed[0] == split
    )
    if not files:
        present = splits_present(dataset_dir)
        raise DataError(
            f"no records for split {split!r} in {dataset_dir!r} (expected files named "
            f"{shard_filename(split, 0, 4)!r} and so on; splits present: {present or 'none'})"
        )
    return files


# --- protobuf wire format -------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:  # int64 negatives are encoded as their 64-bit two's complement.
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _feature(value: bytes | str | int) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes):
        # Feature.bytes_list (1) -> BytesList.value (1).
        return _length_delimited(1, _length_delimited(1, value))
    if isinstance(value, int):
        # Feature.int64_list (3) -> Int64List.value (1), packed.
        return _length_delimited(3, _length_delimited(1, _varint(value)))
    raise TypeError(f"unsupported feature value type {type(value).__name__}")


def encode_example(features: dict[str, bytes | str | int]) -> bytes:
    """Serialises a ``tf.train.Example`` with one bytes or int64 value per key."""
    entries = b"".join(
        # Features.feature (1) is a map: each entry has key (1) and value (2).
        _length_delimited(1, _length_delimited(1, key.encode("utf-8")) + _length_delimited(
            2, _feature(features[key])))
        for key in sorted(features)
    )
    return _length_delimited(1, entries)  # Example.features (1).


def image_seg_to_example(
    image_data: bytes,
    filename: str,
    height: int,
    width: int,
    label_data: bytes | None,
    image_format: str = "jpeg",
    label_format: str = "png",
) -> bytes:
    """The original's `image_seg_to_tfexample`, serialised.

    A record without a label (a test split) keeps every key, with an empty label string, which
    the original's parser also reads (its default for a missing label is ``''``).
    """
    return encode_example(
        {
            IMAGE_ENCODED: image_data,
            IMAGE_FILENAME: filename,
            IMAGE_FORMAT: image_format,
            IMAGE_HEIGHT: int(height),
            IMAGE_WIDTH: int(width),
            IMAGE_CHANNELS: 3,
            LABEL_ENCODED: label_data or b"",
            LABEL_FORMAT: label_format,
        }
    )


# --- TFRecord framing check -----------------------------------------------------------------

_CRC_TABLE: list[int] = []


def _crc_table() -> list[int]:
    if not _CRC_TABLE:
        for i in range(256):
            crc = i
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            _CRC_TABLE.append(crc)
    return _CRC_TABLE


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli). Pure Python: only used on the 8-byte record headers."""
    table = _crc_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The TFRecord masked CRC of `data`."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def parse_example(serialized: bytes, where: str) -> dict:
    """Parses one record into its image and label fields, checking the original's schema.

    Returns:
      ``{"encoded", "filename", "format", "height", "width", "label"}`` (label b"" when
      absent).

    Raises:
      DataError: naming `where` (file and record) and the key that is missing or wrong.
    """
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2

    try:
        features = example_pb2.Example.FromString(serialized).features.feature
    except (DecodeError, ValueError, RuntimeError) as e:
        raise DataError(f"{where}: not a tf.train.Example ({e}); rebuild this split with the "
                        "converter") from None

    def value(key: str, kind: str, required: bool = True):
        feature = features.get(key)
        values = getattr(feature, kind).value if feature is not None else []
        if feature is not None and feature.WhichOneof("kind") not in (kind, None):
            raise DataError(f"{where}: {key!r} holds {feature.WhichOneof('kind')}, expected "
                            f"{kind}; the record does not follow the original's format")
        if not values:
            if required:
                raise DataError(f"{where}: {key!r} is missing; the record does not follow the "
                                "original's format")
            return b"" if kind == "bytes_list" else 0
        return values[0]

    height, width = value(IMAGE_HEIGHT, "int64_list"), value(IMAGE_WIDTH, "int64_list")
    if not (0 < height < 1 << 20 and 0 < width < 1 << 20):
        raise DataError(f"{where}: image size {width}x{height} (WxH) is not plausible")
    return {"encoded": value(IMAGE_ENCODED, "bytes_list"),
            "filename": value(IMAGE_FILENAME, "bytes_list", False),
            "format": value(IMAGE_FORMAT, "bytes_list", False),
            "height": int(height), "width": int(width),
            "label": value(LABEL_ENCODED, "bytes_list", False)}


def check_record_framing(path: str) -> int:
    """Walks a TFRecord file's record headers and returns the number of records.

    This reads 12 bytes per record and seeks over the payloads, so it is fast even for large
    shards. It catches truncated files and files that are not TFRecords at all; a flipped bit
    inside a payload is only caught by TensorFlow's data CRC when the record is read.

    Raises:
      DataError: naming the file, the record index and the byte offset.
    """
    size = os.path.getsize(path)
    count = 0
    offset = 0
    with open(path, "rb") as f:
        while offset < size:
            header = f.read(12)
            problem = None
            if len(header) < 12:
                problem = "the file ends inside a record header"
            else:
                (length,) = struct.unpack("<Q", header[:8])
                (length_crc,) = struct.unpack("<I", header[8:])
                if masked_crc32c(header[:8]) != length_crc:
                    problem = "a record header is corrupt (length checksum mismatch)"
                elif offset + 12 + length + 4 > size:
                    problem = (
                        f"the file ends inside record {count} ({length} bytes announced, "
                        f"{size - offset - 16} present)"
                    )
            if problem:
                raise DataError(
                    f"TFRecord file {path!r} is truncated or corrupt at byte {offset}: {problem}. "
                    "Rebuild this split with the converter (it rewrites every shard)."
                )
            offset += 12 + length + 4
            f.seek(offset)
            count += 1
    return count
