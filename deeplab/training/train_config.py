"""Training settings: the original's train.py flags as a dataclass (binaries fill it)."""

from __future__ import annotations

import dataclasses

from deeplab.config import ModelConfig, check_field_types

OPTIMIZERS = ("momentum", "adam")
MIXED_PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
# --class_balancing: how label weights are computed from the training split's class counts
# (deeplab.training.class_balancing).
CLASS_BALANCING = ("median_frequency", "inverse_frequency")


def check_crop_size(crop) -> tuple[int, int]:
    """``crop`` as (height, width); ValueError naming ``--train_crop_size`` otherwise."""
    crop = tuple(int(v) for v in crop)
    if len(crop) != 2 or min(crop) < 1:
        raise ValueError(f"--train_crop_size: takes two positive sizes 'height,width', got "
                         f"{crop}")
    return crop


# The ModelConfig fields deeplab-train sets from flags of other names, and those it sets
# from its own flags of the same name (besides the generated model flags).
MODEL_FIELD_FLAGS = {"crop_size": "train_crop_size",
                     "dense_prediction_cell": "dense_prediction_cell_json"}
TRAIN_MODEL_FLAGS = ("weight_decay", "fine_tune_batch_norm")


def model_field_flag(field: str) -> str:
    """How deeplab-train's messages name a ModelConfig field: by the flag that sets it
    (``crop_size`` by ``--train_crop_size``), else as ``ModelConfig.<field>``."""
    from deeplab.config import flag_fields

    if field in MODEL_FIELD_FLAGS:
        return f"--{MODEL_FIELD_FLAGS[field]}"
    if field in TRAIN_MODEL_FLAGS or field in {f.name for f in flag_fields()}:
        return f"--{field}"
    return f"ModelConfig.{field}"


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs besides the model config.

    Field names are the original's flags; their help is in ``deeplab/cli/train.py``.
    """

    model: ModelConfig
    dataset_dir: str
    train_logdir: str
    dataset: str | None = None
    train_split: str = "train"
    train_batch_size: int = 8
    train_crop_size: tuple[int, int] = (513, 513)
    training_number_of_steps: int = 30000
    optimizer: str = "momentum"
    momentum: float = 0.9
    adam_learning_rate: float = 0.001
    adam_epsilon: float = 1e-8
    learning_policy: str = "poly"
    base_learning_rate: float = 0.0001
    learning_power: float = 0.9
    end_learning_rate: float = 0.0
    decay_steps: float = 0.0
    learning_rate_decay_step: int = 2000
    learning_rate_decay_factor: float = 0.1
    slow_start_step: int = 0
    slow_start_learning_rate: float = 1e-4
    last_layer_gradient_multiplier: float = 1.0
    upsample_logits: bool = True
    label_weights: float | tuple[float, ...] = 1.0
    class_balancing: str | None = None
    top_k_percent_pixels: float = 1.0
    hard_example_mining_step: int = 0
    tf_initial_checkpoint: str | None = None
    initialize_last_layer: bool = True
    last_layers_contain_logits_only: bool = False
    min_scale_factor: float = 0.5
    max_scale_factor: float = 2.0
    scale_factor_step_size: float = 0.25
    min_resize_value: int | None = None
    max_resize_value: int | None = None
    resize_factor: int | None = None
    log_steps: int = 10
    save_interval_secs: int = 1200
    save_interval_steps: int = 0
    max_to_keep: int = 5
    save_summaries_secs: int = 600
    save_summaries_images: bool = False
    profile_logdir: str | None = None
    mixed_precision: str = "none"
    xla: bool = False
    seed: int | None = None
    drop_path_keep_prob: float = 1.0

    # How messages name a model field: by the deeplab-train flag that sets it.
    model_field_flag = staticmethod(model_field_flag)

    def __post_init__(self):
        check_field_types(self, "TrainConfig")

        def fail(field, message):
            raise ValueError(f"--{field}: {message}")

        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.mixed_precision not in MIXED_PRECISIONS:
            fail("mixed_precision", f"must be one of {MIXED_PRECISIONS}")
        if self.class_balancing not in (None, *CLASS_BALANCING):
            fail("class_balancing", f"must be one of {CLASS_BALANCING}, got "
                 f"{self.class_balancing!r}")
        self.train_crop_size = check_crop_size(self.train_crop_size)
        if self.train_batch_size < 1:
            fail("train_batch_size", f"must be >= 1, got {self.train_batch_size}")
        if self.training_number_of_steps < 1:
            fail("training_number_of_steps", "must be >= 1")
        if not 0.0 < self.top_k_percent_pixels <= 1.0:
            fail("top_k_percent_pixels", f"must be in (0, 1], got {self.top_k_percent_pixels}")
        if not 0.0 < self.drop_path_keep_prob <= 1.0:
            fail("drop_path_keep_prob", f"must be in (0, 1], got {self.drop_path_keep_prob}")
        if self.drop_path_keep_prob < 1.0 and not self.model.model_variant.startswith("nas_"):
            fail("drop_path_keep_prob", f"drops paths of the nas_pnasnet / nas_hnasnet "
                 f"cells; {self.model.model_variant} has none: leave it at 1.0")
        if isinstance(self.label_weights, (list, tuple)):
            self.label_weights = tuple(float(w) for w in self.label_weights)
            if len(self.label_weights) != self.model.num_classes:
                fail("label_weights", f"gives {len(self.label_weights)} weights for "
                     f"{self.model.num_classes} classes")

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["model"] = self.model.to_dict()
        return values
