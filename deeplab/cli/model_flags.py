"""The model flags, generated from :class:`deeplab.config.ModelConfig`'s fields.

Each field marked as a flag in ``config.py`` (help, kind, choices) becomes a flag of the same
name, with the original's name and default where the original had one; a field is written
once. Integer and number lists accept the original's repeated form (``--atrous_rates=6
--atrous_rates=12``) and the comma form (``--atrous_rates=6,12,18``).
"""

from __future__ import annotations

from absl import flags

from deeplab.config import ModelConfig, flag_fields


def _list_default(value) -> list[str]:
    if value is None:
        return []
    return [",".join(str(v) for v in value)]


def define_model_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one flag per ModelConfig flag field."""
    for field in flag_fields():
        meta = field.metadata
        name, help_text, kind = field.name, meta["flag_help"], meta["flag_kind"]
        if kind == "enum":
            flags.DEFINE_enum(name, field.default, list(meta["flag_choices"]()), help_text,
                              flag_values=flag_values)
        elif kind in ("ints", "floats"):
            flags.DEFINE_multi_string(name, _list_default(field.default), help_text,
                                      flag_values=flag_values)
        else:
            define = {"int": flags.DEFINE_integer, "float": flags.DEFINE_float,
                      "bool": flags.DEFINE_boolean, "string": flags.DEFINE_string}[kind]
            define(name, field.default, help_text, flag_values=flag_values)


def _parse_list(values, flag_name: str, convert, kind: str, example: str) -> tuple:
    items = [v.strip() for value in values or [] for v in str(value).split(",") if v.strip()]
    try:
        return tuple(convert(v) for v in items)
    except ValueError:
        raise ValueError(f"--{flag_name} takes {kind}, e.g. --{flag_name}={example}; got "
                         f"{values}.") from None


def parse_int_list(values, flag_name: str) -> tuple[int, ...]:
    """Flattens repeated and comma-separated values: ['6,12', '18'] → (6, 12, 18)."""
    return _parse_list(values, flag_name, int, "integers", "6,12,18")


def parse_float_list(values, flag_name: str) -> tuple[float, ...]:
    """Flattens repeated and comma-separated numbers: ['0.5,0.75', '1'] → (0.5, 0.75, 1.0)."""
    return _parse_list(values, flag_name, float, "numbers", "0.75,1.0")


def _field_value(values: flags.FlagValues, field):
    value = values[field.name].value
    kind = field.metadata["flag_kind"]
    if kind == "floats":
        return parse_float_list(value, field.name) or field.default
    if kind != "ints":
        return value
    if field.name == "atrous_rates" and list(value) == ["auto"]:
        return "auto"
    return parse_int_list(value, field.name) or field.default


def model_config_from_flags(values: flags.FlagValues, **overrides) -> ModelConfig:
    """Builds a ModelConfig from parsed flags (``overrides`` win, e.g. crop_size)."""
    fields = {field.name: _field_value(values, field) for field in flag_fields()}
    fields.update(overrides)
    return ModelConfig(**fields)


def explicit_model_overrides(values: flags.FlagValues, crop_size=None) -> dict:
    """ModelConfig fields for the model flags given on the command line, plus
    ``crop_size`` when given (the original's eval / vis / export crop, which sizes the image
    pooling).

    Binaries that load a saved model take its config and let these override it, so an
    export cannot silently differ from training (the original's export defaulted to output
    stride 8 where training used 16, a classic cause of wrong exports).
    """
    # Validated with the saved config they override (a full ModelConfig of the flags alone
    # would check them against the flag defaults, e.g. 21 classes for a 19-class model).
    overrides = {field.name: _field_value(values, field) for field in flag_fields()
                 if values[field.name].present}
    if crop_size:
        overrides["crop_size"] = tuple(crop_size)
    return overrides
