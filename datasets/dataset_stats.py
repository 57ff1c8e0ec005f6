"""Class statistics of a data set's records: table, bar chart, counts in dataset.json.

Thin entry point: flags, main and help live in ``deeplab/cli/dataset_stats.py``.
"""

from deeplab.cli.dataset_stats import run

if __name__ == "__main__":
    run()
