"""Writes a model's weights as a TF1 checkpoint with the original release's variable names.

The inverse of :func:`deeplab.weights.checkpoint_import.import_tf1_checkpoint`: TF1 code
(the original's train / eval / export scripts) can read what this writes, and our own
importer reads it back exactly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from deeplab.weights.scopes import original_variable_map


def original_variables(model) -> dict[str, np.ndarray]:
    """``{original variable name: value}`` for every layer the original has a scope for."""
    return {name: np.asarray(variable)
            for name, variable in original_variable_map(model).items()}


def export_tf1_checkpoint(model, prefix: str | Path, global_step: int = 0) -> str:
    """Writes ``<prefix>.index`` and ``<prefix>.data-*`` as TF1's Saver did for the model
    zoo. The files are written in a temporary folder beside and moved in, the index last,
    so a reader never sees a partial checkpoint.

    Returns:
        The checkpoint prefix.
    """
    prefix = Path(prefix)
    values = original_variables(model)
    values["global_step"] = np.int64(global_step)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{prefix.name}-", dir=prefix.parent))
    try:
        with tf.Graph().as_default():
            variables = [tf.compat.v1.Variable(v, name=n) for n, v in values.items()]
            saver = tf.compat.v1.train.Saver(variables)
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                saver.save(session, str(temporary / prefix.name), write_meta_graph=False,
                           write_state=False)
        for path in sorted(temporary.iterdir(), key=lambda p: p.suffix == ".index"):
            os.replace(path, prefix.parent / path.name)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return str(prefix)
