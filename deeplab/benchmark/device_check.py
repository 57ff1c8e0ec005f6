"""One machine's devices, checked end to end: training, parity, serving, speed.

``scripts/gpu_check.py`` runs it. On a GPU machine it trains MobileNetV2 and Xception-65
DeepLabv3+ with MirroredStrategy over the visible GPUs in every precision, with and without
XLA, and checks that the loss falls; compares each backbone's logits on every GPU (and under
XLA) with TensorFlow's CPU kernels, same weights, at output stride 8 and 16; exports the
TF Serving SavedModel and serves an image on the first device; and reports train and
forward images/s with the peak device memory. With ``device="cpu"`` the same runs on the
CPU (tiny sizes in the test), where the parity check compares XLA with the CPU kernels.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np

from deeplab.benchmark.forward import dtype_policy
from deeplab.benchmark.machine import describe_machine
from deeplab.benchmark.timing import time_call

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# DeepLabv3+ as the original trains them (ModelConfig fields; rates per output stride).
MODELS: dict[str, dict] = {
    "mobilenet_v2": dict(model_variant="mobilenet_v2", decoder_output_stride=(4,)),
    "xception_65": dict(model_variant="xception_65", decoder_output_stride=(4,)),
}
XCEPTION_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}
NUM_CLASSES = 6  # the synthetic data set's
PARITY_TOLERANCE = 1e-3  # of the reference logits' range


@dataclasses.dataclass
class CheckSettings:
    """What to run.

    Attributes:
        device: "gpu" (fail without one) or "cpu" (GPUs hidden).
        models: :data:`MODELS` names.
        precisions: Keras dtype policies of the training runs.
        xla: the XLA settings of the training runs.
        size: square crop of training, forward timing and parity.
        batch_sizes: global batch sizes; the first trains ``steps`` steps for the
            loss-falls check, each is timed.
        steps: training steps on one fixed batch (the loss must fall).
        timed_steps: timed calls per train / forward measurement.
        output_strides: of the parity check.
        serve: export the SavedModel and serve one image.
    """

    device: str = "gpu"
    models: tuple[str, ...] = tuple(MODELS)
    precisions: tuple[str, ...] = PRECISIONS
    xla: tuple[bool, ...] = (False, True)
    size: int = 513
    batch_sizes: tuple[int, ...] = (8, 16)
    steps: int = 10
    timed_steps: int = 3
    output_strides: tuple[int, ...] = (8, 16)
    serve: bool = True

    def validate(self) -> None:
        if self.device not in ("gpu", "cpu"):
            raise ValueError(f"--device must be gpu or cpu, got {self.device!r}.")
        for name in self.models:
            if name not in MODELS:
                raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}.")
        for precision in self.precisions:
            if precision not in PRECISIONS:
                raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS}.")
        if self.steps < 3 or self.timed_steps < 1 or not self.batch_sizes:
            raise ValueError("steps must be >= 3, timed_steps >= 1, batch_sizes not empty.")


class NoGPU(RuntimeError):
    """A GPU check was asked for on a machine where TensorFlow sees no GPU."""


def model_config(name: str, output_stride: int = 16, crop_size: int | None = None):
    from deeplab.config import ModelConfig

    fields = dict(MODELS[name], output_stride=output_stride, num_classes=NUM_CLASSES)
    if name.startswith("xception"):
        fields["atrous_rates"] = XCEPTION_RATES[output_stride]
    if crop_size:
        fields["crop_size"] = (crop_size, crop_size)
    return ModelConfig(**fields)


def _memory(device: str, reset: bool = False) -> float | None:
    """Peak MB held by TF's allocator on ``device`` since the last reset (None: unknown)."""
    import tensorflow as tf

    try:
        if reset:
            tf.config.experimental.reset_memory_stats(device)
            return None
        return round(tf.config.experimental.get_memory_info(device)["peak"] / 2**20, 1)
    except (ValueError, tf.errors.OpError):
        return None


def synthetic_batch(batch_size: int, size: int, seed: int = 0) -> dict:
    """A fixed batch of synthetic images and labels (the data set's generator)."""
    from deeplab.data.synthetic import generate_example

    pairs = [generate_example(seed, "train", i, size, size) for i in range(batch_size)]
    return {"image": np.stack([p[0] for p in pairs]).astype(np.float32),
            "label": np.stack([p[1] for p in pairs])[..., None].astype(np.int32)}


def train_run(name: str, precision: str, xla: bool, settings: CheckSettings, strategy,
              memory_device: str, workdir: str) -> dict:
    """Trains on one fixed batch (the loss must fall), then times each batch size."""
    import tensorflow as tf

    from deeplab.training.train_config import TrainConfig
    from deeplab.training.trainer import Trainer

    config = TrainConfig(
        model_config(name, 16, settings.size), dataset_dir=workdir,
        train_logdir=os.path.join(workdir, f"{name}-{precision}-{xla}"),
        train_crop_size=(settings.size,) * 2, train_batch_size=settings.batch_sizes[0],
        training_number_of_steps=settings.steps, optimizer="adam", adam_learning_rate=1e-3,
        learning_policy="step", learning_rate_decay_step=10**9,
        mixed_precision="none" if precision == "float32" else precision, xla=xla, seed=0)
    row: dict = {"model": name, "precision": precision, "xla": xla}
    with dtype_policy("float32"):
        trainer = Trainer(config, strategy, log=lambda line: None)

        def batches(batch_size):
            data = tf.data.Dataset.from_tensors(synthetic_batch(batch_size, settings.size))
            return iter(strategy.experimental_distribute_dataset(data.repeat()))

        start = time.perf_counter()
        iterator = batches(settings.batch_sizes[0])
        losses = [float(trainer.train_step(next(iterator))[0]) for _ in range(settings.steps)]
        row["train_s"] = round(time.perf_counter() - start, 1)
        row["losses"] = [round(v, 4) for v in losses]
        finite = all(np.isfinite(losses))
        falls = finite and min(losses[-2:]) < 0.9 * losses[0]
        row["ok"] = bool(falls)
        if not row["ok"]:
            row["why"] = ("loss is not finite" if not finite else
                          f"loss did not fall by 10 % in {settings.steps} steps")
        for batch_size in settings.batch_sizes:
            iterator = batches(batch_size)
            trainer.train_step(next(iterator))  # traces this batch size
            _memory(memory_device, reset=True)
            timing = time_call(lambda it=iterator: float(trainer.train_step(next(it))[0]),
                               settings.timed_steps, warmup=0)
            row[f"train_images_per_s_b{batch_size}"] = round(batch_size / timing.median_s, 2)
            row[f"train_peak_mb_b{batch_size}"] = _memory(memory_device)
    return row


def forward_speed(name: str, precision: str, settings: CheckSettings, device: str,
                  memory_device: str) -> dict:
    """Forward images/s (tf.function, inference) at each batch size on ``device``."""
    import tensorflow as tf

    from deeplab.model import DeepLab

    row: dict = {"model": name, "precision": precision}
    with dtype_policy(precision), tf.device(device):
        model = DeepLab(model_config(name, 16, settings.size))
        forward = tf.function(lambda x: model(x, training=False))
        for batch_size in settings.batch_sizes:
            images = tf.constant(synthetic_batch(batch_size, settings.size)["image"])
            forward(images)
            _memory(memory_device, reset=True)
            timing = time_call(lambda x=images: forward(x).numpy(), settings.timed_steps)
            row[f"forward_images_per_s_b{batch_size}"] = round(batch_size / timing.median_s, 2)
            row[f"forward_peak_mb_b{batch_size}"] = _memory(memory_device)
    return row


def parity(name: str, output_stride: int, size: int, devices: list[str]) -> list[dict]:
    """Logits on each device and under XLA against TF's CPU kernels, same weights."""
    import keras
    import tensorflow as tf

    from deeplab.model import DeepLab

    keras.utils.set_random_seed(output_stride)
    with dtype_policy("float32"):
        model = DeepLab(model_config(name, output_stride, size))
    image = tf.constant(synthetic_batch(1, size)["image"])
    _calibrate_batch_norm(model, tf.constant(synthetic_batch(2, size, seed=1)["image"]))
    forward = tf.function(lambda x: model(x, training=False))
    with tf.device("/CPU:0"):
        reference = forward(image).numpy()
    span = float(reference.max() - reference.min())
    # Each GPU, and XLA on the first device (on a CPU-only machine: XLA alone).
    candidates: dict[str, Callable[[], np.ndarray]] = {
        device: (lambda d=device: _on(d, forward, image)) for device in devices
        if "GPU" in device.upper()}
    xla = tf.function(lambda x: model(x, training=False), jit_compile=True)
    candidates[f"{devices[0]} XLA"] = lambda: _on(devices[0], xla, image)
    rows = []
    # Exact float32 on the GPU: TensorFloat-32 would round conv inputs to 10 mantissa bits.
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        for label, run in candidates.items():
            difference = float(np.abs(run() - reference).max())
            relative = difference / max(span, 1e-12)
            rows.append({"model": name, "output_stride": output_stride, "against": "/CPU:0",
                         "device": label, "max_abs_diff": difference, "logit_range": span,
                         "relative": relative, "ok": relative <= PARITY_TOLERANCE})
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
    return rows


def _calibrate_batch_norm(model, images) -> None:
    """Sets every BN's moving statistics to one batch's, so inference activations keep
    their scale (with the initial mean 0 / variance 1 a random deep net's logits vanish)."""
    import keras

    norms = [layer for layer in model._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
    try:
        model(images, training=True)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum


def _on(device, function, image) -> np.ndarray:
    import tensorflow as tf

    with tf.device(device):
        return function(image).numpy()


def serve_check(device: str, size: int, workdir: str) -> dict:
    """Exports the TF Serving SavedModel and serves one image on ``device``."""
    import tensorflow as tf

    from deeplab.export.saved_model import export_saved_model
    from deeplab.inference.probabilities import predict_probabilities
    from deeplab.model import DeepLab

    with dtype_policy("float32"):
        model = DeepLab(model_config("mobilenet_v2", 16, size))
    path = export_saved_model(model, os.path.join(workdir, "export"))
    image = synthetic_batch(1, size)["image"].astype(np.uint8)
    with tf.device(device):
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        served = serve(image=tf.constant(image))["semantic_predictions"].numpy()
        timing = time_call(lambda: serve(image=tf.constant(image))["semantic_predictions"]
                           .numpy(), 3)
    keras_predictions = np.argmax(
        predict_probabilities(model, tf.constant(image, tf.float32)).numpy(), -1)
    agreement = float(np.mean(served == keras_predictions))
    return {"device": device, "export": str(path), "shape": list(served.shape),
            "agreement_with_keras": agreement, "latency_ms": round(1000 * timing.median_s, 1),
            "ok": served.shape == image.shape[:3] and agreement >= 0.999}


def run_check(settings: CheckSettings, log: Callable[[str], None] = print) -> dict:
    """Runs every part; returns the JSON-ready results with an overall ``ok``.

    Raises:
        NoGPU: ``device="gpu"`` on a machine where TensorFlow sees no GPU.
    """
    settings.validate()
    import tensorflow as tf

    if settings.device == "cpu":
        tf.config.set_visible_devices([], "GPU")
    gpus = tf.config.list_logical_devices("GPU")
    if settings.device == "gpu" and not gpus:
        raise NoGPU("no GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is "
                    "empty): install a CUDA build (pip install 'tensorflow[and-cuda]') and "
                    "check nvidia-smi, or run with --device=cpu.")
    devices = [d.name for d in gpus] or ["/device:CPU:0"]
    memory_device = "GPU:0" if gpus else "CPU:0"
    strategy = tf.distribute.MirroredStrategy(devices)
    log(f"devices: {', '.join(devices)} (MirroredStrategy, {strategy.num_replicas_in_sync} "
        f"replica(s)); parity reference /CPU:0")
    results: dict = {"machine": describe_machine(), "devices": devices,
                     "settings": dataclasses.asdict(settings), "train": [], "forward": [],
                     "parity": []}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deeplab-device-check-") as workdir:
        for name in settings.models:
            for precision in settings.precisions:
                for xla in settings.xla:
                    log(f"train {name} {precision} xla={xla}")
                    row = train_run(name, precision, xla, settings, strategy, memory_device,
                                    workdir)
                    log(f"  losses {row['losses']} ({'ok' if row['ok'] else 'FAILED'})")
                    results["train"].append(row)
                log(f"forward {name} {precision}")
                results["forward"].append(
                    forward_speed(name, precision, settings, devices[0], memory_device))
            for output_stride in settings.output_strides:
                log(f"parity {name} OS {output_stride}")
                results["parity"] += parity(name, output_stride, settings.size, devices)
        if settings.serve:
            log("serving")
            results["serving"] = serve_check(devices[0], settings.size, workdir)
    results["elapsed_s"] = round(time.perf_counter() - start, 1)
    parts = results["train"] + results["parity"] + [results.get("serving", {"ok": True})]
    results["ok"] = all(part["ok"] for part in parts)
    return results


def _mb(value) -> str:
    # TF keeps no CPU allocator statistics without oneDNN.
    return "n/a" if value is None else f"{value:.0f} MB"


def format_results(results: dict) -> str:
    """Plain-text tables of :func:`run_check`'s results."""
    lines = [f"devices: {', '.join(results['devices'])}",
             f"machine: {results['machine']['cpu']}, TF {results['machine']['tensorflow']}",
             "", "training (fixed batch; the loss must fall by 10 %):"]
    for row in results["train"]:
        speeds = "  ".join(
            f"{k.split('_')[-1]}: {v} img/s, peak {_mb(row[k.replace('images_per_s', 'peak_mb')])}"
            for k, v in row.items() if k.startswith("train_images_per_s"))
        lines.append(f"  {row['model']:13s} {row['precision']:15s} xla={row['xla']!s:5s} "
                     f"{'ok  ' if row['ok'] else 'FAIL'} loss {row['losses'][0]:.3f} -> "
                     f"{row['losses'][-1]:.3f}  {speeds}")
    lines.append("forward (inference, tf.function):")
    for row in results["forward"]:
        speeds = "  ".join(
            f"{k.split('_')[-1]}: {v} img/s, peak {_mb(row[k.replace('images_per_s', 'peak_mb')])}"
            for k, v in row.items() if k.startswith("forward_images_per_s"))
        lines.append(f"  {row['model']:13s} {row['precision']:15s} {speeds}")
    lines.append(f"parity against TF's CPU kernels (max |diff| <= {PARITY_TOLERANCE:g} of the "
                 "logit range):")
    for row in results["parity"]:
        lines.append(f"  {row['model']:13s} OS {row['output_stride']:2d} {row['device']:22s} "
                     f"{'ok  ' if row['ok'] else 'FAIL'} {row['relative']:.2e} of range "
                     f"{row['logit_range']:.3g}")
    if "serving" in results:
        s = results["serving"]
        lines.append(f"serving on {s['device']}: {'ok' if s['ok'] else 'FAIL'}, agreement "
                     f"{s['agreement_with_keras']:.4f}, {s['latency_ms']} ms")
    lines.append(f"\n{'PASSED' if results['ok'] else 'FAILED'} in {results['elapsed_s']} s")
    return "\n".join(lines)
