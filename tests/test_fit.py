"""Fine-tuning the Keras way (issue 32): ``deeplab.fit_dataset`` feeds ``model.fit`` the
trainer's own batches, ``fit``'s loss is the trainer's, and the README's example runs from
``from_preset(..., num_classes=N)`` to ``fit``."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from shared_runs import REPO, tiny_config
from zoo_server import ZooServer, randomize, write_zoo_tarball

import deeplab
from deeplab.training.trainer import Trainer


def test_fit_gets_the_trainers_batches_and_its_first_step_loss(tiny_data, tmp_path):
    """On the same batch and weights, the loss ``model.fit`` reports for its first step
    equals the trainer's cross-entropy (void pixels excluded) + regularization."""
    trainer = Trainer(tiny_config(tiny_data, tmp_path / "run"), log=lambda line: None)
    model = trainer.model
    batch = next(iter(trainer.dataset(seed=3)))
    images, labels = batch["image"], batch["label"]
    fed = next(iter(deeplab.fit_dataset(tiny_data, "train", 2, (33, 33), model, seed=3)))
    # The same augmented crops (random scale, crop, flip, mean-pixel padding) and labels.
    np.testing.assert_array_equal(fed[0].numpy(), images.numpy())
    np.testing.assert_array_equal(fed[1].numpy(), labels.numpy())
    assert 0 < np.mean(labels.numpy() == 255) < 1  # void pixels are in the batch

    # Every variable, the dropout's random state included, as before each computation.
    before = [np.asarray(v) for v in model.variables]
    loss, regularization, _ = trainer._loss_and_gradients(images, labels)
    for variable, value in zip(model.variables, before, strict=True):
        variable.assign(value)
    # Eager: the same train_step and compute_loss as a compiled fit, without its tracing.
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  ignore_class=255),
                  run_eagerly=True)
    history = model.fit(tf.data.Dataset.from_tensors((images, labels)), epochs=1, verbose=0)
    assert float(regularization) > 0
    np.testing.assert_allclose(history.history["loss"][0], float(loss + regularization),
                               rtol=2e-5)


def readme_fine_tuning() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Fine-tune with Keras"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_fine_tuning_example_runs(tiny_data, tmp_path, monkeypatch):
    """The README's example, on the tiny records (crops of 33, two steps), its preset served
    by a local zoo server: a download, an import and a fit with validation (about 25 s)."""
    code = readme_fine_tuning()
    name = re.search(r'from_preset\("([\w-]+)"', code).group(1)
    preset = deeplab.weights.presets.PRESETS[name]
    source = randomize(deeplab.from_preset(name, load_weights=False), seed=2)
    server = ZooServer()
    server.files[f"/models/{preset.tarball}.tar.gz"] = write_zoo_tarball(
        source, tmp_path, preset.tarball).read_bytes()
    monkeypatch.setenv("DEEPLAB_ZOO_URL", server.base_url)
    monkeypatch.setenv("DEEPLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.chdir(tmp_path)
    for old, new in (("workspace/datasets/mine/tfrecord", str(tiny_data)),
                     ("batch_size=8", "batch_size=2"), ("(513, 513)", "(33, 33)"),
                     ("steps_per_epoch=1000, epochs=10", "steps_per_epoch=2, epochs=1")):
        assert old in code, old
        code = code.replace(old, new)
    names: dict = {}
    try:
        exec(compile(code, "README.md#fine-tune-with-keras", "exec"), names)
    finally:
        server.stop()
    model = names["model"]
    assert model.config.num_classes == 6 and len(names["history"].history["loss"]) == 1
    assert {"loss", "mean_io_u", "val_loss", "val_mean_io_u"} <= set(names["history"].history)
    again = deeplab.load_model(tmp_path / "mine.weights.h5")
    assert again.config == model.config
    # It started from the served weights (two small steps away), not from fresh ones.
    stem, served = np.asarray(model.backbone.weights[0]), np.asarray(source.backbone.weights[0])
    fresh = np.asarray(deeplab.from_preset(name, load_weights=False).backbone.weights[0])
    assert np.abs(stem - served).max() < 0.01 < np.abs(fresh - served).max()


def test_fit_dataset_takes_a_tfds_name_and_refuses_tfds_options_for_records(tiny_data):
    with pytest.raises(ValueError, match=r"fit_dataset: \['label_key'\] apply to a TFDS source "
                       r"\('tfds:<name>'\), not to the records in "):
        deeplab.fit_dataset(tiny_data, "train", label_key="mask")
    from deeplab.data.errors import DataError

    with pytest.raises(DataError, match="TFDS data set 'no_such_set_here' is not available"):
        deeplab.fit_dataset("tfds:no_such_set_here", "train")
