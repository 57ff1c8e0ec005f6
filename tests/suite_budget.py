"""The suite's time budget: slowest files first, and a report of where the time went.

``tests/durations.json`` holds each test's last measured time (seconds, setup + call +
teardown, 2 cores of the reference machine named in it). Files are started longest first, so
the two pytest-xdist workers finish together instead of the longest file starting last (run
with ``--dist loadfile --no-loadscope-reorder``; xdist's own reorder counts tests, not
seconds). A test not in the table counts ``NEW_TEST_SECONDS``.

After a run, the ``FILES_SHOWN`` slowest files are printed with their worker seconds;
``DEEPLAB_UPDATE_DURATIONS=1`` writes this run's times into the table.
"""

from __future__ import annotations

import json
import os
import platform
from collections import defaultdict
from pathlib import Path

DURATIONS = Path(__file__).with_name("durations.json")
NEW_TEST_SECONDS = 3.0
FILES_SHOWN = 10


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def measured() -> dict[str, float]:
    """nodeid -> seconds of the table (empty when there is none)."""
    if not DURATIONS.is_file():
        return {}
    return json.loads(DURATIONS.read_text())["seconds"]


def order_longest_file_first(items: list) -> None:
    """Sorts collected items so that files run in falling order of their expected time;
    the tests of a file keep their order (a stable sort on the file's total)."""
    seconds = measured()
    per_file: dict[str, float] = defaultdict(float)
    for item in items:
        per_file[_file_of(item.nodeid)] += seconds.get(item.nodeid, NEW_TEST_SECONDS)
    items.sort(key=lambda item: -per_file[_file_of(item.nodeid)])


def pytest_collection_modifyitems(session, config, items) -> None:
    order_longest_file_first(items)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    per_test: dict[str, float] = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid, duration = getattr(report, "nodeid", None), getattr(report, "duration", None)
            if nodeid and duration is not None and "::" in nodeid:
                per_test[nodeid] += duration
    if not per_test:
        return
    per_file: dict[str, float] = defaultdict(float)
    for nodeid, duration in per_test.items():
        per_file[_file_of(nodeid)] += duration
    write = terminalreporter.write_line
    write(f"worker seconds by file ({sum(per_file.values()):.0f} s in all; "
          f"the {FILES_SHOWN} slowest):")
    for name, duration in sorted(per_file.items(), key=lambda kv: -kv[1])[:FILES_SHOWN]:
        write(f"  {duration:7.1f} s  {name}")
    if os.environ.get("DEEPLAB_UPDATE_DURATIONS") == "1":
        table = measured()
        table.update({nodeid: round(duration, 2) for nodeid, duration in per_test.items()})
        root = Path(config.rootpath)
        table = {k: v for k, v in sorted(table.items()) if (root / _file_of(k)).is_file()}
        temporary = DURATIONS.with_suffix(".json.tmp")
        temporary.write_text(json.dumps({"machine": f"{os.cpu_count()} cores, {_cpu_model()}",
                                         "seconds": table}, indent=0) + "\n")
        os.replace(temporary, DURATIONS)
        write(f"wrote {len(per_test)} test times into {DURATIONS}")
