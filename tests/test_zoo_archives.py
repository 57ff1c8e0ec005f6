"""Hostile and damaged zoo archives, and presets given the wrong thing (issue 31): each is
refused before anything is unpacked or built, in one line naming the file (or the name)
and what to do."""

from __future__ import annotations

import io
import tarfile
import tempfile

import pytest
from zoo_server import assert_same_weights, randomize, write_zoo_tarball

import deeplab
from deeplab.weights import archive
from deeplab.weights.checkpoint_export import export_tf1_checkpoint
from deeplab.weights.presets import PRESETS, get_preset
from deeplab.weights.zoo_import import import_zoo_checkpoint

DM05 = PRESETS["mobilenetv2_dm05_coco_voc_trainaug"]
FOLDER = "deeplabv3_mnv2_dm05_pascal_trainaug"


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read without holding them."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def tarball_with(tmp_path, *members: tuple[tarfile.TarInfo, bytes | io.RawIOBase | None],
                 name: str = DM05.tarball) -> str:
    path = tmp_path / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as packed:
        for member, data in members:
            source = io.BytesIO(data) if isinstance(data, bytes) else (
                io.BufferedReader(data, 2**20) if data is not None else None)
            packed.addfile(member, source)
    return path


def member(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, link: str = ""):
    info = tarfile.TarInfo(f"{FOLDER}/{name}")
    info.size, info.type, info.linkname = size, kind, link
    return info


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A TMPDIR of the test's own, to see that nothing was unpacked into it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_member_declaring_a_gigabyte_is_refused_before_unpacking(tmp_path, private_tmp):
    """FAIL 1 of issue 31: a 1 GB member (4.7 MB compressed) used to fill the disk."""
    path = tarball_with(tmp_path, (member("model.ckpt.data-00000-of-00001", 2**30),
                                   _Zeros(2**30)), (member("model.ckpt.index", 4), b"abcd"))
    with pytest.raises(ValueError) as raised:
        import_zoo_checkpoint(path)
    size = f"{path.stat().st_size / 2**20:.1f} MB"
    assert str(raised.value) == (
        f"{path}: member {FOLDER}/model.ckpt.data-00000-of-00001 declares 1.0 GB in an archive "
        f"of {size} (over 50 times its size: not checkpoint weights, which barely compress); "
        "refused before unpacking")
    assert list(private_tmp.iterdir()) == []


def test_declared_sizes_are_held_against_a_limit_and_the_free_space(tmp_path, private_tmp,
                                                                    monkeypatch):
    path = tarball_with(tmp_path, (member("model.ckpt.index", 1000), bytes(1000)),
                        (member("model.ckpt.data-00000-of-00001", 3000), bytes(3000)),
                        name=DM05.tarball)
    monkeypatch.setattr(archive, "MAX_COMPRESSION_RATIO", 10**6)
    monkeypatch.setattr(archive, "MAX_UNPACKED_BYTES", 2000)
    with pytest.raises(ValueError, match=r": its checkpoint members declare 3.9 KB, more than "
                       r"any model zoo checkpoint \(2.0 KB at most\); refused before unpacking"):
        import_zoo_checkpoint(path)
    monkeypatch.setattr(archive, "MAX_UNPACKED_BYTES", 2**33)
    monkeypatch.setattr(archive, "FREE_SPACE_MARGIN", 2**62)  # more than any disk has free
    with pytest.raises(ValueError, match=rf"^{path}: unpacking its checkpoint needs 3.9 KB in "
                       f"{private_tmp}, which has .* free: free some space or set TMPDIR"):
        import_zoo_checkpoint(path)
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("kind,link,said", [
    (tarfile.SYMTYPE, "/etc/passwd", "a symbolic link (to /etc/passwd)"),
    (tarfile.LNKTYPE, f"{FOLDER}/frozen_inference_graph.pb",
     f"a hard link (to {FOLDER}/frozen_inference_graph.pb)"),
    (tarfile.CHRTYPE, "", "a device"),
])
def test_link_and_device_members_are_one_line_and_never_followed(tmp_path, private_tmp, kind,
                                                                   link, said):
    path = tarball_with(tmp_path, (member("frozen_inference_graph.pb", 4), b"abcd"),
                        (member("model.ckpt.index", 0, kind, link), None),
                        (member("model.ckpt.data-00000-of-00001", 4), b"abcd"))
    with pytest.raises(ValueError) as raised:
        import_zoo_checkpoint(path)
    assert str(raised.value) == (
        f"{path}: member {FOLDER}/model.ckpt.index is {said}, not a file; a model zoo archive "
        "holds regular files only (refused, nothing was unpacked)")
    assert list(private_tmp.iterdir()) == []


@pytest.fixture(scope="module")
def dm05_models():
    """Two dm05 models with different random weights."""
    build = lambda seed: randomize(deeplab.from_preset(DM05.name, load_weights=False), seed)  # noqa: E731
    return build(1), build(2)


def test_a_data_file_cut_short_inside_a_complete_tarball_is_one_line(tmp_path, dm05_models):
    def cut(inner):
        data = next(inner.glob("*.data-*"))
        data.write_bytes(data.read_bytes()[:1000])

    path = write_zoo_tarball(dm05_models[0], tmp_path, DM05.tarball, extra=cut)
    with pytest.raises(ValueError) as raised:
        import_zoo_checkpoint(path)
    assert str(raised.value).startswith(f"{path} (its model.ckpt-30000) cannot be read (")
    assert str(raised.value).endswith("): the checkpoint is cut short or damaged; download it "
                                      "again")
    assert "\n" not in str(raised.value)


def test_a_tarball_with_two_checkpoints_imports_the_one_its_checkpoint_file_names(
        tmp_path, dm05_models):
    first, newer = dm05_models

    def add_a_newer_one(inner):
        export_tf1_checkpoint(newer, inner / "model.ckpt-50000", global_step=50000)
        # As TF1's Saver wrote it on the training machine: its path, the kept ones.
        (inner / "checkpoint").write_text(
            'model_checkpoint_path: "/cns/train/model.ckpt-30000"\n'
            'all_model_checkpoint_paths: "/cns/train/model.ckpt-30000"\n')

    path = write_zoo_tarball(first, tmp_path, DM05.tarball, extra=add_a_newer_one)
    assert_same_weights(first, import_zoo_checkpoint(path).model)


def test_a_missing_checkpoint_prefix_names_the_ones_that_are_there(tmp_path):
    run = tmp_path / "train"
    run.mkdir()
    for step in (3, 7):
        (run / f"model.ckpt-{step}.index").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as raised:
        import_zoo_checkpoint(run / "model.ckpt-5")
    assert str(raised.value) == (
        f"{run}/model.ckpt-5: no such checkpoint (model.ckpt-5.index is missing; {run} holds "
        "model.ckpt-3, model.ckpt-7): give the prefix of one that is there, its folder or the "
        "tarball")


def test_a_near_miss_name_gets_the_closest_names_and_a_url_says_what_to_do():
    with pytest.raises(ValueError) as raised:
        get_preset("xception65_coco_voc")
    assert str(raised.value) == (
        "'xception65_coco_voc' is not a checkpoint of the original's model zoo; did you mean "
        "'xception65_coco_voc_trainval' or 'xception65_coco_voc_trainaug'?")
    with pytest.raises(ValueError) as raised:
        deeplab.from_preset("https://example.com/files/my_model.tar.gz")
    assert str(raised.value) == (
        "https://example.com/files/my_model.tar.gz is a URL whose file is not a model zoo "
        "tarball: from_preset takes a zoo name (its URL is known; DEEPLAB_ZOO_URL sets a "
        "mirror); for a file of your own, download it and give weights=<its path>, or load it "
        "with deeplab.load_model")
    with pytest.raises(ValueError) as raised:
        deeplab.from_preset(DM05.name, weights="https://example.com/models/x.tar.gz")
    assert str(raised.value) == (
        f"weights=https://example.com/models/x.tar.gz is not {DM05.name}'s tarball "
        f"({DM05.tarball}.tar.gz): give the preset's URL, or download the file and give its "
        "path")


def test_from_preset_refuses_another_models_weights_file_naming_both(tmp_path, dm05_models):
    """FAIL 2 of issue 31: an Xception preset name with a MobileNetV2 6-class file returned
    the MobileNetV2 model without a word."""
    path = tmp_path / "mine.weights.h5"
    mine = deeplab.build_deeplab(model_variant="mobilenet_v2", depth_multiplier=0.35,
                                 num_classes=6, atrous_rates=())
    deeplab.save_model(mine, path)
    with pytest.raises(ValueError) as raised:
        deeplab.from_preset("xception65_coco_voc_trainaug", weights=path)
    message = str(raised.value)
    assert message.startswith(f"{path} holds another model than the zoo's "
                              "xception65_coco_voc_trainaug (")
    for difference in ("model_variant 'mobilenet_v2' in the file, 'xception_65' in the preset",
                       "num_classes 6 in the file, 21 in the preset",
                       "depth_multiplier 0.35 in the file, 1.0 in the preset"):
        assert difference in message
    assert message.endswith(f"load it as it is with deeplab.load_model({str(path)!r})")

    # A file imported from another preset says which; one fine-tuned from this preset for
    # other classes is named with the argument that loads it.
    imported = tmp_path / "trainval.weights.h5"
    deeplab.save_model(dm05_models[0], imported, preset="mobilenetv2_dm05_coco_voc_trainval")
    with pytest.raises(ValueError, match=f"^{imported} was imported from the zoo's "
                       f"mobilenetv2_dm05_coco_voc_trainval, not {DM05.name}: give"):
        deeplab.from_preset(DM05.name, weights=imported)
    tuned = tmp_path / "tuned.weights.h5"
    six = randomize(deeplab.from_preset(DM05.name, load_weights=False, num_classes=6), seed=4)
    deeplab.save_model(six, tuned)
    with pytest.raises(ValueError, match=r"\(num_classes 6 in the file, 21 in the preset\): "
                       r".*; if it was fine-tuned from .* for 6 classes, give num_classes=6$"):
        deeplab.from_preset(DM05.name, weights=tuned)
    assert_same_weights(six, deeplab.from_preset(DM05.name, weights=tuned, num_classes=6))
