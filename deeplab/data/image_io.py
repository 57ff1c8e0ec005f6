"""Reading images and label masks for the converters, with the checks users need.

Everything here is TF-free (PIL, OpenCV, numpy) because it runs in the encoding worker processes.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from deeplab.data.errors import DataError

# Large aerial and retinal images exceed PIL's decompression-bomb guard; they are our own data.
Image.MAX_IMAGE_PIXELS = None

ColorTable = Mapping[tuple[int, int, int], int]


def read_bytes(path: str) -> bytes:
    """Reads a file, transparently gunzipping ``*.gz`` (STARE ships ``im0001.ppm.gz``)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"cannot read {path!r}: {e.strerror or e}") from None
    if path.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"{path!r} is not a valid gzip file: {e}") from None
    return data


# PIL's decompression-bomb guard is off (large aerial and retinal images are real data), so
# a corrupt header claiming billions of pixels is refused here before anything is allocated.
MAX_PIXELS = 1 << 30

# The formats read (PIL's names). Each states its size in its header, which is checked
# against MAX_PIXELS before a pixel is decoded (a 34-byte WebP can declare 16383x16383).
# Everything else PIL could open is refused: formats nobody segments, and EPS / PS, which
# PIL renders by running Ghostscript on the file.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "TIFF", "PPM", "WEBP")
_FORMAT_NAMES = "PNG, JPEG, GIF, BMP, TIFF, PPM/PGM/PBM or WebP"


def image_suffixes() -> tuple[str, ...]:
    """The file name endings of :data:`IMAGE_FORMATS` (``.png``, ``.webp``, ``.tif``...):
    what a folder of images is listed by, so every file the decoder reads is found."""
    return tuple(sorted(suffix for suffix, name in Image.registered_extensions().items()
                        if name in IMAGE_FORMATS))


def open_image(data: bytes, path: str) -> Image.Image:
    """The decoded image of a file's bytes, in one of :data:`IMAGE_FORMATS`, its size
    checked from the header before decoding.

    Raises:
        DataError: naming ``path``: another format, a corrupt or truncated file, or more
            than :data:`MAX_PIXELS` pixels.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except UnidentifiedImageError:
        raise DataError(f"{path!r} is corrupt or not an image in a format read here "
                        f"({_FORMAT_NAMES}); convert, replace or remove the file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise DataError(
            f"{path!r} is corrupt or not an image ({e}); replace or remove the file") from None
    return _decoded(image, path)


def _decoded(image: Image.Image, path: str) -> Image.Image:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise DataError(
            f"{path!r} claims {width}x{height} pixels, more than {MAX_PIXELS} (a corrupt "
            "header, or an image too large to load whole: cut it into tiles first)")
    try:
        image.load()  # Decode fully now: a truncated file must fail here, not at training time.
        return image
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            MemoryError, Image.DecompressionBombError) as e:
        raise DataError(
            f"{path!r} is corrupt or not an image ({e}); replace or remove the file") from None


# EXIF orientation -> how a viewer turns the stored pixels (PIL's exif_transpose).
ORIENTATIONS = {2: "mirrored left-right", 3: "rotated 180°", 4: "mirrored top-bottom",
                5: "transposed", 6: "rotated 90° clockwise", 7: "transversed",
                8: "rotated 90° counter-clockwise"}


def exif_orientation(image: Image.Image) -> int:
    """The image's EXIF Orientation tag (1 when absent or invalid)."""
    try:
        value = int(image.getexif().get(0x0112, 1))
    except (ValueError, TypeError, OSError, SyntaxError):
        return 1
    return value if value in ORIENTATIONS else 1


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H x W [x C]) turned as EXIF ``orientation`` says, as PIL's
    ``ImageOps.exif_transpose`` and image viewers do (6: turned 90° clockwise)."""
    turns = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
             4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
             6: lambda a: np.rot90(a, 3), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
             8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(turns[orientation](array))


def _orientation_warning(path: str, orientation: int) -> str:
    return (f"{path}: EXIF orientation {orientation} applied ({ORIENTATIONS[orientation]}, "
            "as image viewers show it)")


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk; its bit depth byte is at offset 24.
    return data[24] if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 24 else 8


def _to_uint8_rgb(data: bytes, image: Image.Image, path: str) -> tuple[np.ndarray, str]:
    """Converts an image that is not 8-bit RGB; returns the array and a description."""
    mode = image.mode
    if image.format == "PNG" and _png_bit_depth(data) == 16:
        # PIL reduces 16-bit RGB PNGs to 8 bits without saying so; OpenCV keeps all 16.
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise DataError(f"{path!r}: cannot decode this 16-bit PNG")
        array = (array >> 8).astype(np.uint8)
        if array.ndim == 2:
            return np.stack([array] * 3, axis=-1), "16-bit grayscale image converted to 8-bit RGB"
        array = cv2.cvtColor(array[..., :3], cv2.COLOR_BGR2RGB)
        return array, "16-bit image reduced to 8 bits per channel"
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image)
        if mode.startswith("I;16"):
            array = (array.astype(np.uint32) >> 8).astype(np.uint8)
            description = "16-bit grayscale image converted to 8-bit RGB"
        else:
            array = np.clip(array, 0, 255).astype(np.uint8)
            description = f"{mode} grayscale image converted to 8-bit RGB"
        return np.stack([array] * 3, axis=-1), description
    descriptions = {
        "L": "grayscale image converted to RGB",
        "LA": "grayscale+alpha image converted to RGB (alpha dropped)",
        "1": "1-bit image converted to RGB",
        "P": "palette image converted to RGB",
        "PA": "palette+alpha image converted to RGB (alpha dropped)",
        "RGBA": "RGBA image converted to RGB (alpha dropped)",
        "CMYK": "CMYK image converted to RGB",
        "YCbCr": "YCbCr image converted to RGB",
        "LAB": "Lab image converted to RGB",
        "HSV": "HSV image converted to RGB",
    }
    description = descriptions.get(mode, f"{mode} image converted to RGB")
    return np.asarray(image.convert("RGB")), description


def encode_png(array: np.ndarray) -> bytes:
    """Encodes a uint8 HxW or HxWx3 (RGB) array as PNG."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise DataError("PNG encoding failed")
    return buf.tobytes()


def encode_jpeg(array: np.ndarray, quality: int = 95) -> bytes:
    """Encodes a uint8 HxWx3 RGB array as JPEG."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(array, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError("JPEG encoding failed")
    return buf.tobytes()


def prepare_image(
    data: bytes, path: str, fallback_format: str = "png"
) -> tuple[bytes, str, int, int, list[str]]:
    """Makes record-ready image bytes from a file's content.

    8-bit RGB JPEG and PNG files are stored byte for byte, as the original does. Everything else
    (grayscale, RGBA, 16-bit, CMYK, palette, and TIFF/PPM/GIF/BMP containers) is converted to
    8-bit RGB and re-encoded in `fallback_format`, with a warning for the colour conversions.
    A photo with an EXIF orientation is turned as viewers show it (masks are drawn on that
    view) and re-encoded, with a warning; the original stored it unturned.

    Returns:
      (encoded bytes, record format 'jpeg' or 'png', height, width, warnings).
    """
    image = open_image(data, path)
    orientation = exif_orientation(image)
    plain = (image.format in ("JPEG", "PNG") and image.mode == "RGB"
             and _png_bit_depth(data) == 8)
    if plain and orientation == 1:
        width, height = image.size
        return data, "jpeg" if image.format == "JPEG" else "png", height, width, []
    warnings = []
    if image.mode == "RGB" and not (image.format == "PNG" and _png_bit_depth(data) == 16):
        array = np.asarray(image)  # Only the container changes (TIFF, PPM, BMP...): no warning.
    else:
        array, description = _to_uint8_rgb(data, image, path)
        warnings.append(f"{path}: {description}")
    if orientation != 1:
        array = orient(array, orientation)
        warnings.append(_orientation_warning(path, orientation))
    height, width = array.shape[:2]
    if fallback_format in ("jpg", "jpeg"):
        return encode_jpeg(array), "jpeg", height, width, warnings
    return encode_png(array), "png", height, width, warnings


def read_image_array(path: str) -> np.ndarray:
    """Reads any image file as a uint8 HxWx3 RGB array, EXIF orientation applied (tiles,
    predict)."""
    data = read_bytes(path)
    image = open_image(data, path)
    if image.mode == "RGB" and not (image.format == "PNG" and _png_bit_depth(data) == 16):
        array = np.asarray(image)
    else:
        array = _to_uint8_rgb(data, image, path)[0]
    return orient(array, exif_orientation(image))


def read_index_mask(path: str, color_table: ColorTable | None = None,
                    unknown_color_label: int | None = None) -> np.ndarray:
    """Reads a label mask as a uint8 HxW array of class ids.

    Palette PNGs give their indices directly (what `remove_gt_colormap.py` did in the original).
    Single-channel 8- or 16-bit masks give their values. RGB masks need a colour table; without
    one they are an error, unless all three channels are equal (a grey mask saved as RGB).

    Args:
      path: mask file.
      color_table: RGB tuple -> class id, for colour-coded masks.
      unknown_color_label: the id for colours not in the table; None makes them an error.
    """
    data = read_bytes(path)
    mask = open_image(data, path)
    mode = mask.mode
    if mode in ("P", "L", "1"):
        array = np.asarray(mask).astype(np.uint8)
    elif mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(mask)
        if array.max(initial=0) > 255:
            raise DataError(
                f"{path!r}: 16-bit mask holds values up to {int(array.max())}; class ids must "
                "be below 256 (values 0..num_classes-1 and the ignore label)")
        array = array.astype(np.uint8)
    elif mode in ("RGB", "RGBA", "LA", "PA"):
        rgb = np.asarray(mask.convert("RGB"))
        if color_table is not None:
            array = apply_color_table(rgb, color_table, path, unknown_color_label)
        elif mode == "LA" or (np.array_equal(rgb[..., 0], rgb[..., 1])
                              and np.array_equal(rgb[..., 0], rgb[..., 2])):
            array = rgb[..., 0].copy()
        else:
            colors = np.unique(rgb.reshape(-1, 3), axis=0)
            shown = ", ".join(str(tuple(int(v) for v in c)) for c in colors[:5])
            raise DataError(
                f"{path!r} is an RGB colour mask ({len(colors)} colours, e.g. {shown}) where "
                "class indices are expected. Give a colour table (build_image_folder_data.py "
                "--color_table=colors.json) or save the masks as single-channel or palette PNGs "
                "of class ids")
    else:
        raise DataError(f"{path!r}: unsupported mask mode {mode!r}; save it as a PNG of class ids")
    # A mask carrying an orientation tag is shown turned too; annotators drew on that view.
    return orient(array, exif_orientation(mask))


def apply_color_table(rgb: np.ndarray, color_table: ColorTable, path: str,
                      unknown_color_label: int | None = None) -> np.ndarray:
    """Maps an HxWx3 colour mask to class ids through `color_table`."""
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    table_keys = np.array([(r << 16) | (g << 8) | b for (r, g, b) in color_table], np.int32)
    table_ids = np.array(list(color_table.values()), np.uint8)
    order = np.argsort(table_keys)
    table_keys, table_ids = table_keys[order], table_ids[order]
    pos = np.clip(np.searchsorted(table_keys, keys), 0, len(table_keys) - 1)
    known = table_keys[pos] == keys
    if not known.all() and unknown_color_label is None:
        bad = np.unique(keys[~known])[:5]
        shown = ", ".join(str(((int(k) >> 16) & 255, (int(k) >> 8) & 255, int(k) & 255))
                          for k in bad)
        raise DataError(
            f"{path!r} holds {int((~known).sum())} pixels with colours not in the colour table "
            f"(e.g. {shown}); add them to the table")
    return np.where(known, table_ids[pos], unknown_color_label or 0).astype(np.uint8)


def load_color_table(path: str) -> tuple[dict[tuple[int, int, int], int], list[str]]:
    """Reads a colour table file.

    JSON: a list of ``{"color": [r, g, b], "id": 3, "name": "car"}`` (``id`` defaults to the
    position). Text: one ``r g b [name]`` per line, the line number is the id.

    Returns:
      (colour -> id, class names in id order, possibly empty).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise DataError(f"cannot read colour table {path!r}: {e.strerror or e}") from None
    table: dict[tuple[int, int, int], int] = {}
    names: dict[int, str] = {}
    try:
        if path.endswith(".json"):
            for position, entry in enumerate(json.loads(text)):
                class_id = int(entry.get("id", position))
                table[tuple(int(v) for v in entry["color"])] = class_id
                if "name" in entry:
                    names[class_id] = str(entry["name"])
        else:
            lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
            for class_id, line in enumerate(lines):
                parts = line.split()
                table[(int(parts[0]), int(parts[1]), int(parts[2]))] = class_id
                if len(parts) > 3:
                    names[class_id] = " ".join(parts[3:])
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise DataError(f"colour table {path!r} is malformed ({e!r}); see "
                        "deeplab.data.image_io.load_color_table for the format") from None
    if not table:
        raise DataError(f"colour table {path!r} is empty")
    ordered = [names.get(i, "") for i in range(max(table.values()) + 1)] if names else []
    return table, ordered


def check_label(label: np.ndarray, height: int, width: int, num_classes: int, ignore_label: int,
                image_path: str, label_path: str) -> None:
    """Checks a label against its image size and the class range.

    Raises:
      DataError: on a size mismatch, or values >= num_classes that are not the ignore label
        (the usual cause of NaN losses and all-background predictions in the original).
    """
    if label.shape[:2] != (height, width):
        hint = ""
        if label.shape[:2] == (width, height):
            hint = ("; the label is the image turned by 90°: if the image was turned by an "
                    "EXIF orientation that the mask tool ignored, or the mask was saved "
                    "turned, re-export the mask to match the image as a viewer shows it")
        raise DataError(
            f"size mismatch: image {image_path!r} is {width}x{height} (WxH) as viewers show it "
            f"(EXIF orientation applied) but label {label_path!r} is "
            f"{label.shape[1]}x{label.shape[0]}{hint}")
    values = np.unique(label)
    bad = values[(values >= num_classes) & (values != ignore_label)]
    if bad.size:
        raise DataError(
            f"label {label_path!r} holds values {bad[:10].tolist()} outside 0..{num_classes - 1} "
            f"that are not the ignore label {ignore_label}; fix the mask, or set num_classes / "
            "ignore_label to match it")


def stack_color_table(colors: Sequence[Sequence[int]]) -> dict[tuple[int, int, int], int]:
    """Builds a colour table from a list of RGB colours indexed by class id."""
    return {tuple(int(v) for v in c): i for i, c in enumerate(colors)}
