"""Label colormaps of the original release (``utils/get_dataset_colormap.py``) and their inverse."""

from __future__ import annotations

import numpy as np

from deeplab.inference.colormap_tables import ADE20K_COLORS, MAPILLARY_VISTAS_COLORS

# Cityscapes train ids 0..18: road, sidewalk, building, wall, fence, pole, traffic light,
# traffic sign, vegetation, terrain, sky, person, rider, car, truck, bus, train, motorcycle,
# bicycle.
_CITYSCAPES_COLORS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)
PASCAL_ENTRIES = 512
CITYSCAPES_ENTRIES = 256


def bit_get(value: int, index: int) -> int:
    """Bit ``index`` of ``value`` (the original's ``bit_get``)."""
    return (value >> index) & 1


def pascal_colormap(entries: int = PASCAL_ENTRIES) -> np.ndarray:
    """The PASCAL VOC colormap: label bits interleaved into the high bits of R, G, B."""
    colormap = np.zeros((entries, 3), dtype=np.int64)
    labels = np.arange(entries, dtype=np.int64)
    for shift in reversed(range(8)):
        for channel in range(3):
            colormap[:, channel] |= ((labels >> channel) & 1) << shift
        labels >>= 3
    return colormap


def cityscapes_colormap() -> np.ndarray:
    """19 Cityscapes train-id colours, zero-padded to 256 entries."""
    colormap = np.zeros((CITYSCAPES_ENTRIES, 3), dtype=np.int64)
    colormap[: len(_CITYSCAPES_COLORS)] = _CITYSCAPES_COLORS
    return colormap


def ade20k_colormap() -> np.ndarray:
    """151 ADE20K colours: 0 is "other" (black), 1..150 the SceneParsing classes."""
    return np.asarray(ADE20K_COLORS, dtype=np.int64)


def mapillary_vistas_colormap() -> np.ndarray:
    """66 Mapillary Vistas colours (65 classes + unlabeled)."""
    return np.asarray(MAPILLARY_VISTAS_COLORS, dtype=np.int64)


# "mapillary_vistas" is the original's dataset name; "mapillary" is the short form.
COLORMAPS = {
    "pascal": pascal_colormap,
    "cityscapes": cityscapes_colormap,
    "ade20k": ade20k_colormap,
    "mapillary_vistas": mapillary_vistas_colormap,
    "mapillary": mapillary_vistas_colormap,
}


def get_colormap(name: str) -> np.ndarray:
    try:
        return COLORMAPS[name]()
    except KeyError:
        raise ValueError(f"Unknown colormap {name!r}; choose one of {sorted(COLORMAPS)}.") from None


def class_colors(num_classes: int, colormap: str = "pascal", colors=None) -> np.ndarray:
    """[num_classes, 3] uint8: a data set's own ``colors`` (``dataset.json``'s table,
    colormap ``custom``) when given, else the first entries of ``colormap``; classes past
    the table's end get pascal colours, so every class can be drawn."""
    if colors is not None:
        table = np.asarray(colors, np.int64).reshape(-1, 3)
    else:
        table = get_colormap("pascal" if colormap == "custom" else colormap)
    if len(table) < num_classes:
        table = np.concatenate([table, pascal_colormap()[len(table):num_classes]])
    return table[:num_classes].astype(np.uint8)


def label_to_color_image(label: np.ndarray, colormap: str = "pascal") -> np.ndarray:
    """[H, W] integer labels → [H, W, 3] uint8 colours."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"Expected a [H, W] label, got shape {label.shape}.")
    table = get_colormap(colormap)
    if label.size and (label.min() < 0 or label.max() >= len(table)):
        raise ValueError(f"Label values must be in [0, {len(table)}) for the {colormap} colormap.")
    return table[label].astype(np.uint8)


def color_image_to_label(color: np.ndarray, colormap: str = "pascal",
                         unknown: int | None = None) -> np.ndarray:
    """Inverse of :func:`label_to_color_image` for colour-coded ground truth.

    Raises ValueError naming the first colour not in the colormap, unless ``unknown`` gives
    a label for such pixels.
    """
    color = np.asarray(color)[..., :3].astype(np.int64)
    table = get_colormap(colormap)
    keys = (table[:, 0] << 16) | (table[:, 1] << 8) | table[:, 2]
    # First occurrence wins: several padded entries share (0, 0, 0).
    lookup: dict[int, int] = {}
    for index, key in enumerate(keys.tolist()):
        lookup.setdefault(key, index)
    pixel_keys = (color[..., 0] << 16) | (color[..., 1] << 8) | color[..., 2]
    unique, inverse = np.unique(pixel_keys, return_inverse=True)
    mapped = []
    for key in unique.tolist():
        if key not in lookup:
            if unknown is None:
                rgb = ((key >> 16) & 255, (key >> 8) & 255, key & 255)
                raise ValueError(f"Colour {rgb} is not in the {colormap} colormap.")
            mapped.append(unknown)
        else:
            mapped.append(lookup[key])
    return np.asarray(mapped, dtype=np.int64)[inverse].reshape(pixel_keys.shape)
