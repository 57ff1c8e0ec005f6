"""OUR side of the oracle: deeplab-keras, run in the project's venv.

Takes the same flag strings as orig_side.py and parses them with the project's own
``deeplab-train`` flags (``deeplab.cli.train``: flags -> TrainConfig, --num_clones ->
strategy), imports the original's checkpoint (``import_tf1_checkpoint``, strict), then

  forward: DeepLab(images, training=False) and head_logits_model(), or with --eval the
           project's multi-scale + flip inference (``predict_probabilities``)
  train:   Trainer.train_step on the same fixed batch (the project's own step)

Results are keyed by the ORIGINAL's variable names (deeplab.weights.scopes.scope_targets).
"""
import json
import os
import shlex
import tempfile
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from cli_args import parser  # noqa: E402

from deeplab.cli import train as train_cli  # noqa: E402  (the project's train flags)

NUM_CLASSES = 21


def parse_flags(a, *extra):
    """The project's TrainConfig and strategy plan from the original's flag strings."""
    logdir = tempfile.mkdtemp(prefix="oracle-ours-")
    argv = ["deeplab-train", f"--train_logdir={logdir}", f"--dataset_dir={logdir}",
            f"--train_crop_size={a.crop},{a.crop}", f"--train_batch_size={a.batch}",
            f"--weight_decay={a.weight_decay}"] + shlex.split(a.model)
    for more in extra:
        argv += shlex.split(more)
    values = train_cli.FLAGS
    values.unparse_flags()
    values(argv)
    return train_cli.train_config_from_flags(values, NUM_CLASSES), train_cli.strategy_plan(values)


def original_names(model):
    """original TF1 variable name -> our keras variable"""
    from deeplab.weights.scopes import original_variable_map

    return original_variable_map(model)


def load(model, a):
    from deeplab.weights.checkpoint_import import import_tf1_checkpoint

    report = import_tf1_checkpoint(model, os.path.join(a.out, "ckpt", "model.ckpt"), strict=True)
    if report.unused_in_file or report.missing_in_model:
        raise SystemExit("checkpoint import incomplete:\n" + report.summary())
    return report


def no_dropout(model):
    """Dropout rate 0 in every Dropout sublayer (the ASPP's concat_projection dropout)."""
    n = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if hasattr(layer, "dropout_layer"):
            layer.dropout_layer.rate = 0.0
            n += 1
    return n


def cmd_forward(a):
    import tensorflow as tf

    from deeplab.inference.probabilities import predict_probabilities
    from deeplab.model import DeepLab

    config, _ = parse_flags(a)
    d = np.load(os.path.join(a.out, "inputs.npz"))
    model = DeepLab(config.model)
    load(model, a)
    images = tf.constant(d["images"])
    evaluation = shlex.split(a.eval)
    if not evaluation:
        result = {"upsampled": model(images, training=False).numpy(),
                  "merged": model.head_logits_model()(images, training=False).numpy()}
    else:
        options = dict(arg.lstrip("-").split("=", 1) if "=" in arg else (arg.lstrip("-"), "1")
                       for arg in evaluation)
        scales = tuple(float(s) for s in options.get("eval_scales", "1.0").split(","))
        probabilities = predict_probabilities(model, images, scales,
                                              options.get("add_flipped_images") == "1").numpy()
        result = {"labels": probabilities.argmax(-1), "probabilities": probabilities}
    np.savez(os.path.join(a.out, f"ours_forward_{a.tag}.npz"), **result)
    print(json.dumps({k: list(v.shape) for k, v in result.items()}))


def cmd_train(a):
    import tensorflow as tf

    from deeplab.training.distribution import make_strategy
    from deeplab.training.trainer import Trainer

    config, plan = parse_flags(a, a.flags)
    strategy = make_strategy(plan)
    d = np.load(os.path.join(a.out, "inputs.npz"))
    trainer = Trainer(config, strategy, log=lambda *x: None)
    model = trainer.model
    load(model, a)
    dropouts = 0 if a.dropout else no_dropout(model)
    names = original_names(model)
    by_path = {v.path: k for k, v in names.items()}
    batch = {"image": tf.constant(d["images"]), "label": tf.constant(d["labels"])}
    batches = iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).repeat()))
    out = {}
    # Step-1 gradients after the multipliers, summed over the replicas (the all-reduce).
    # A Keras call with training=True updates the BN moving stats: restored afterwards.
    stats = {k: v.numpy() for k, v in names.items() if "moving_" in k}
    first = next(batches)
    grads = tf.function(lambda b: [
        None if g is None else strategy.reduce("SUM", g, axis=None)
        for g in strategy.run(lambda im, lb: trainer._loss_and_gradients(im, lb)[2],
                              args=(b["image"], b["label"]))])(first)
    for g, v in zip(grads, model.trainable_variables):
        if g is not None and v.path in by_path:
            out["grad/" + by_path[v.path]] = (g * trainer.multipliers.get(v.path, 1.0)).numpy()
    for k, val in stats.items():
        names[k].assign(val)
    rec = {"loss": [], "ce": [], "reg": [], "lr": [], "seconds": []}
    for _ in range(a.steps):
        lr = float(trainer.schedule(trainer.step))
        t = time.time()
        ce, reg = trainer.train_step(next(batches))
        rec["seconds"].append(time.time() - t)
        rec["ce"].append(float(ce))
        rec["reg"].append(float(reg))
        rec["loss"].append(float(ce) + float(reg))
        rec["lr"].append(lr)
    for k, v in names.items():
        out["var/" + k] = v.numpy()
    for k, v in rec.items():
        out["rec/" + k] = np.asarray(v)
    np.savez(os.path.join(a.out, f"ours_train_{a.tag}.npz"), **out)
    mult = {by_path[p]: m for p, m in trainer.multipliers.items() if p in by_path}
    unmapped = [v.path for v in model.trainable_variables if v.path not in by_path]
    with open(os.path.join(a.out, f"ours_train_{a.tag}.json"), "w") as f:
        json.dump({"multipliers": mult, "unmapped_trainable": unmapped,
                   "regularized": len(model.losses), "dropout_layers_zeroed": dropouts,
                   "replicas": strategy.num_replicas_in_sync, **rec}, f, indent=1)
    print(json.dumps({"tag": a.tag, **{k: rec[k] for k in ("loss", "ce", "reg", "lr")},
                      "regularized": len(model.losses), "unmapped": len(unmapped),
                      "replicas": strategy.num_replicas_in_sync}))


COMMANDS = {"forward": cmd_forward, "train": cmd_train}


def main():
    a = parser(COMMANDS).parse_args()
    COMMANDS[a.cmd](a)


if __name__ == "__main__":
    main()
