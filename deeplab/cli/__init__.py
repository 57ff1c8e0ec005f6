"""Command-line plumbing shared by the binaries: absl flag definitions → config dataclasses.

Library code never reads flags; binaries call ``define_*`` at import and convert the
parsed values with ``*_from_flags(FLAGS)``.
"""
