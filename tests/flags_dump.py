"""Prints every flag of the given deeplab.cli binaries as JSON (run by test_original_flags).

Usage: python flags_dump.py <binary> [<binary> ...]   (module names under deeplab.cli)

One process imports each binary in turn and removes its flags before the next, since
every binary defines its flags on absl's global FLAGS at import (absl's own flags, such
as --logtostderr, stay).
"""

import importlib
import json
import sys

from absl import flags


def describe(flag) -> dict:
    return {"type": flag.flag_type(), "default": flag.default,
            "choices": sorted(getattr(flag.parser, "enum_values", None) or [])}


result = {}
for binary in sys.argv[1:]:
    importlib.import_module(f"deeplab.cli.{binary}")
    values = flags.FLAGS
    result[binary] = {name: describe(values[name]) for name in list(values)}
    ours = {flag.name for module, module_flags in values.flags_by_module_dict().items()
            if module.startswith("deeplab") for flag in module_flags}
    for name in ours:
        if name in values:
            delattr(values, name)
    for module in [m for m in sys.modules if m.startswith("deeplab.cli")]:
        del sys.modules[module]
print(json.dumps(result, default=str))
