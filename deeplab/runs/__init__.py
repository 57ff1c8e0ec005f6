"""The run folder and the project's own files: config.json, checkpoints, the .weights.h5 +
.config.json format, the trainer's lock, and atomic writes (temp file, then rename)."""
