"""What a weight import matched, skipped and could not place."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class ImportReport:
    """The outcome of an import; ``summary()`` is what the CLI prints.

    Attributes:
        source: the file imported from.
        matched: original scopes written into the model.
        unused_in_file: scopes / variables of the file no model layer took.
        missing_in_model: model scopes the file had no weights for (left as they were).
        notes: anything else worth saying (absent BN gamma, skipped optimizer slots, ...).
    """

    source: str
    matched: list[str]
    unused_in_file: list[str]
    missing_in_model: list[str]
    notes: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.source}: {len(self.matched)} layers imported"]
        if self.unused_in_file:
            lines.append(f"  in the file but not in the model ({len(self.unused_in_file)}): "
                         f"{self.unused_in_file[:20]}")
        if self.missing_in_model:
            lines.append(f"  in the model but not in the file ({len(self.missing_in_model)}): "
                         f"{self.missing_in_model[:20]}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    @property
    def complete(self) -> bool:
        return not self.unused_in_file and not self.missing_in_model
