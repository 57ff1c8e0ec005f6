"""Command-line plumbing shared by the binaries: absl flag definitions → config dataclasses.

Library code never reads flags; binaries call ``define_*`` at import and convert the
parsed values with ``*_from_flags(FLAGS)``.
"""

from deeplab.cli import console

# Binaries import this package before TensorFlow: its console is set up first (C++ log level,
# start-up chatter filtered); a process that imported TensorFlow already is left as it is.
console.start()
