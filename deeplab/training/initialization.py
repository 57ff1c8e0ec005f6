"""``--tf_initial_checkpoint``: start from our checkpoints, .weights.h5 or the original's."""

from __future__ import annotations

from pathlib import Path

from deeplab.runs.store import TRAIN_CONFIG, WEIGHTS_SUFFIX, load_model
from deeplab.weights.checkpoint_import import import_tf1_checkpoint
from deeplab.weights.transfer import copy_weights
from deeplab.weights.zoo_cache import resolve_model_path

_FLAG_HINT = ("set --initialize_last_layer=false --last_layers_contain_logits_only=true to "
              "start the logits afresh")


def _is_original_checkpoint(path: Path) -> bool:
    """A TF1 checkpoint prefix without our config.json beside it."""
    return Path(f"{path}.index").is_file() and not (path.parent / TRAIN_CONFIG).is_file()


def initialize_from_checkpoint(model, path: str, initialize_last_layer: bool = True,
                               last_layers_contain_logits_only: bool = False) -> list[str]:
    """Copies matching weights into ``model``; returns report lines.

    Variables are matched by path (our models) or by the original's scopes (TF1
    checkpoints). The last layers are skipped when ``initialize_last_layer`` is False;
    a shape mismatch elsewhere is an error, and a logits mismatch names the flags to set.
    """
    path = Path(resolve_model_path(str(path)))  # preset:NAME: the zoo's, from the cache
    if not path.name.endswith(WEIGHTS_SUFFIX) and _is_original_checkpoint(path):
        exclude = () if initialize_last_layer else model.last_layer_original_scopes(
            last_layers_contain_logits_only)
        try:
            report = import_tf1_checkpoint(model, str(path), exclude_scopes=exclude)
        except ValueError as error:
            if "logits/semantic" in str(error):
                raise ValueError(f"{error}\nThe number of classes differs: {_FLAG_HINT}.") from None
            raise
        lines = report.summary().splitlines()
        if exclude:
            lines.append(f"  skipped (--initialize_last_layer=false): scopes {list(exclude)}")
        return lines

    skip = () if initialize_last_layer else model.last_layer_prefixes(
        last_layers_contain_logits_only)
    copied, skipped, missing = copy_weights(model, load_model(path), skip, _FLAG_HINT)
    lines = [f"initialised {copied} variables from {path}"]
    if skipped:
        layers = sorted({p.split("/")[0] for p in skipped})
        lines.append(f"  skipped {len(skipped)} last-layer variables "
                     f"(--initialize_last_layer=false): {layers}")
    if missing:
        lines.append(f"  not in the checkpoint, left as initialised ({len(missing)}): "
                     f"{missing[:10]}")
    return lines
