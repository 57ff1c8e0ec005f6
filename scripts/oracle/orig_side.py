"""ORIGINAL side of the oracle: tensorflow/models research/deeplab (TF1 + slim) under
tf.compat.v1, through orig_shim. Builds the shared checkpoint, the eval-mode forward
(single scale, or the original's multi-scale + flip inference) and the original train.py
step (model_deploy clones, train_utils loss / LR / multipliers, Momentum or Adam).

Flags are the original's own, given as strings (parsed by its train.py / common.py):

  python orig_side.py init    --model "--model_variant=mobilenet_v2" --out DIR
  python orig_side.py forward --model "..." --out DIR --tag single
  python orig_side.py forward --model "..." --out DIR --tag ms_flip \
      --eval "--eval_scales=0.5,1.0 --add_flipped_images"
  python orig_side.py train   --model "..." --out DIR --tag T --steps 3 \
      --flags "--base_learning_rate=0.000001 --training_number_of_steps=10"
"""
import json
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import orig_shim  # noqa: E402, I001  (installs tensorflow.contrib -> tf_slim, paths to /tmp/orig)

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
import tf_slim as slim  # noqa: E402
from absl import flags  # noqa: E402

from cli_args import parser  # noqa: E402
from deeplab import common, model  # noqa: E402
from deeplab import train as orig_train  # noqa: E402  (defines train.py's flags)
from deeplab.utils import train_utils  # noqa: E402
from deployment import model_deploy  # noqa: E402

FLAGS = flags.FLAGS
NUM_CLASSES, IGNORE = 21, 255
# Optimizer slots and counters: not model variables.
NOT_MODEL = ("/Momentum", "/Adam", "beta1_power", "beta2_power", "global_step")
flags.DEFINE_list("eval_scales", ["1.0"], "eval.py's flag (the oracle defines it here).")
flags.DEFINE_boolean("add_flipped_images", False, "eval.py's flag.")


def parse_flags(a, *extra):
    argv = ["train.py", "--train_logdir=/tmp/oracle_unused", "--dataset_dir=/tmp/oracle_unused",
            f"--train_crop_size={a.crop},{a.crop}", f"--train_batch_size={a.batch}",
            f"--weight_decay={a.weight_decay}"] + shlex.split(a.model)
    for more in extra:
        argv += shlex.split(more)
    FLAGS.unparse_flags()
    FLAGS(argv)


def options(crop=None):
    crop = crop or [int(s) for s in FLAGS.train_crop_size]
    return common.ModelOptions(outputs_to_num_classes={common.OUTPUT_TYPE: NUM_CLASSES},
                               crop_size=crop, atrous_rates=FLAGS.atrous_rates,
                               output_stride=FLAGS.output_stride)


def make_inputs(a):
    rng = np.random.RandomState(1234)
    images = rng.randint(0, 256, size=(a.batch, a.crop, a.crop, 3)).astype(np.float32)
    # smooth-ish labels: blocks of classes, plus ignore-label pixels (a band + 5 % random)
    coarse = rng.randint(0, NUM_CLASSES, size=(a.batch, 9, 9))
    labels = np.kron(coarse, np.ones((1, 15, 15), np.int64))[:, :a.crop, :a.crop]
    labels = np.pad(labels, ((0, 0), (0, a.crop - labels.shape[1]), (0, a.crop - labels.shape[2])),
                    mode="edge")
    labels[:, :, :7] = IGNORE
    labels[rng.rand(*labels.shape) < 0.05] = IGNORE
    return images, labels[..., None].astype(np.int32)


def model_vars():
    return [v for v in tf.global_variables() if not any(s in v.op.name for s in NOT_MODEL)]


def cmd_init(a):
    """Random init (seeded), then moving stats := the batch's own statistics, perturbed, and
    gamma/beta/biases perturbed: non-trivial but well-scaled weights -> DIR/ckpt."""
    parse_flags(a)
    images, labels = make_inputs(a)
    np.savez(os.path.join(a.out, "inputs.npz"), images=images, labels=labels)
    orig_shim.disable_model_dropout(model)
    with tf.Graph().as_default() as g:
        tf.set_random_seed(a.seed)
        x = tf.constant(images)
        model.multi_scale_logits(x, options(), image_pyramid=None, weight_decay=FLAGS.weight_decay,
                                 is_training=True, fine_tune_batch_norm=True)
        bn_ops = [op for op in g.get_operations() if op.type.startswith("FusedBatchNorm")]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            stats = sess.run({op.name: (op.outputs[1], op.outputs[2]) for op in bn_ops})
            rng = np.random.RandomState(a.seed)
            byname = {v.op.name: v for v in model_vars()}
            for name, (mean, var) in sorted(stats.items()):
                scope = name.rsplit("/", 1)[0]  # .../BatchNorm
                mm, mv = byname[scope + "/moving_mean"], byname[scope + "/moving_variance"]
                mean = mean + 0.1 * np.sqrt(var) * rng.randn(*mean.shape)
                var = var * rng.uniform(0.8, 1.25, size=var.shape)
                mm.load(mean.astype(np.float32), sess)
                mv.load(var.astype(np.float32), sess)
            for name, v in sorted(byname.items()):
                val = sess.run(v)
                if name.endswith("/gamma"):
                    v.load((val * rng.uniform(0.8, 1.25, val.shape)).astype(np.float32), sess)
                elif name.endswith("/beta") or name.endswith("/biases"):
                    v.load((val + 0.1 * rng.randn(*val.shape)).astype(np.float32), sess)
            os.makedirs(os.path.join(a.out, "ckpt"), exist_ok=True)
            path = tf.train.Saver(model_vars()).save(
                sess, os.path.join(a.out, "ckpt", "model.ckpt"))
    print(json.dumps({"ckpt": path, "variables": len(byname), "bn": len(bn_ops)}))


def restore(sess, a):
    tf.train.Saver(model_vars()).restore(sess, os.path.join(a.out, "ckpt", "model.ckpt"))


def cmd_forward(a):
    """model.predict_labels' path (multi_scale_logits in eval mode, then the align-corners
    resize), or with --eval the original's predict_labels_multi_scale (eval.py)."""
    parse_flags(a, a.eval)
    d = np.load(os.path.join(a.out, "inputs.npz"))
    scales = [float(s) for s in FLAGS.eval_scales]
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [a.batch, a.crop, a.crop, 3])
        if scales == [1.0] and not FLAGS.add_flipped_images:
            merged = model.multi_scale_logits(x, options(), image_pyramid=None, is_training=False,
                                              fine_tune_batch_norm=False)[common.OUTPUT_TYPE][
                model.MERGED_LOGITS_SCOPE]
            fetch = {"merged": merged,
                     "upsampled": tf.image.resize_bilinear(merged, tf.shape(x)[1:3],
                                                           align_corners=True)}
        else:
            # eval.py sizes the model from --eval_crop_size: here the images' own size.
            out = model.predict_labels_multi_scale(x, options([a.crop, a.crop]), scales,
                                                   FLAGS.add_flipped_images)
            fetch = {"labels": out[common.OUTPUT_TYPE],
                     "double_softmax": out[common.OUTPUT_TYPE + model.PROB_SUFFIX]}
        with tf.Session() as sess:
            restore(sess, a)
            result = sess.run(fetch, {x: d["images"]})
    np.savez(os.path.join(a.out, f"orig_forward_{a.tag}.npz"), **result)
    print(json.dumps({k: list(v.shape) for k, v in result.items()}))


class _CloneIterator:
    """Each clone's get_next() takes the next slice of the fixed batch, as the original's
    per-clone iterator of clone_batch_size."""

    def __init__(self, images, labels, clones):
        self.images, self.labels = images, labels
        self.size, self.calls = len(images) // clones, 0

    def get_next(self):
        s = slice(self.calls * self.size, (self.calls + 1) * self.size)
        self.calls += 1
        return {common.IMAGE: tf.constant(self.images[s]),
                common.LABEL: tf.constant(self.labels[s])}


def cmd_train(a):
    """The graph of train.py main() on a fixed batch."""
    parse_flags(a, a.flags)
    if not a.dropout:
        orig_shim.disable_model_dropout(model)
    d = np.load(os.path.join(a.out, "inputs.npz"))
    with tf.Graph().as_default():
        tf.set_random_seed(a.seed)
        # Clones on the CPU whatever --clone_on_cpu says: this machine has no GPU.
        config = model_deploy.DeploymentConfig(
            num_clones=FLAGS.num_clones, clone_on_cpu=True, replica_id=0, num_replicas=1,
            num_ps_tasks=0)
        with tf.device(config.variables_device()):
            global_step = tf.train.get_or_create_global_step()
            clones = model_deploy.create_clones(
                config, orig_train._build_deeplab,
                args=(_CloneIterator(d["images"], d["labels"], FLAGS.num_clones),
                      {common.OUTPUT_TYPE: NUM_CLASSES}, IGNORE))
            update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS, config.clone_scope(0))
        with tf.device(config.optimizer_device()):
            learning_rate = train_utils.get_model_learning_rate(
                FLAGS.learning_policy, FLAGS.base_learning_rate, FLAGS.learning_rate_decay_step,
                FLAGS.learning_rate_decay_factor, FLAGS.training_number_of_steps,
                FLAGS.learning_power, FLAGS.slow_start_step, FLAGS.slow_start_learning_rate,
                decay_steps=FLAGS.decay_steps, end_learning_rate=FLAGS.end_learning_rate)
            if FLAGS.optimizer == "momentum":
                optimizer = tf.train.MomentumOptimizer(learning_rate, FLAGS.momentum)
            else:
                optimizer = tf.train.AdamOptimizer(learning_rate=FLAGS.adam_learning_rate,
                                                   epsilon=FLAGS.adam_epsilon)
                learning_rate = tf.constant(FLAGS.adam_learning_rate)  # what Adam uses
        with tf.device(config.variables_device()):
            total_loss, grads_and_vars = model_deploy.optimize_clones(clones, optimizer)
            last_layers = model.get_extra_layer_scopes(FLAGS.last_layers_contain_logits_only)
            grad_mult = train_utils.get_model_gradient_multipliers(
                last_layers, FLAGS.last_layer_gradient_multiplier)
            if grad_mult:
                grads_and_vars = slim.learning.multiply_gradients(grads_and_vars, grad_mult)
            grad_updates = optimizer.apply_gradients(grads_and_vars, global_step=global_step)
            update_ops.append(grad_updates)
            update_op = tf.group(*update_ops)
            with tf.control_dependencies([update_op]):
                train_tensor = tf.identity(total_loss, name="train_op")
        # Each clone's losses are its share (divided by num_clones); the sum is the step's.
        ce = tf.add_n(tf.losses.get_losses()) / FLAGS.num_clones
        reg = tf.losses.get_regularization_loss()
        n_reg = len(tf.losses.get_regularization_losses())
        grads = {v.op.name: g for g, v in grads_and_vars if g is not None}
        mult = {k: float(v) for k, v in grad_mult.items()}
        rec = {"loss": [], "ce": [], "reg": [], "lr": [], "seconds": []}
        out = {}
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            restore(sess, a)
            # Step-1 gradients in a run of their own (no update op in the run).
            for k, v in sess.run(grads).items():
                out["grad/" + k] = v
            for _ in range(a.steps):
                t = time.time()
                res = sess.run([train_tensor, ce, reg, learning_rate])
                rec["seconds"].append(time.time() - t)
                for k, v in zip(["loss", "ce", "reg", "lr"], res[:4]):
                    rec[k].append(float(v))
            for v in model_vars():
                out["var/" + v.op.name] = sess.run(v)
    for k, v in rec.items():
        out["rec/" + k] = np.asarray(v)
    np.savez(os.path.join(a.out, f"orig_train_{a.tag}.npz"), **out)
    with open(os.path.join(a.out, f"orig_train_{a.tag}.json"), "w") as f:
        json.dump({"multipliers": mult, "regularized": n_reg,
                   "update_ops": len(update_ops) - 1, **rec}, f, indent=1)
    print(json.dumps({"tag": a.tag, **{k: rec[k] for k in ("loss", "ce", "reg", "lr")},
                      "update_ops": len(update_ops) - 1, "regularized": n_reg,
                      "multipliers_not_1": len(mult)}))


COMMANDS = {"init": cmd_init, "forward": cmd_forward, "train": cmd_train}


def main():
    a = parser(COMMANDS).parse_args()
    os.makedirs(a.out, exist_ok=True)
    COMMANDS[a.cmd](a)


if __name__ == "__main__":
    main()
