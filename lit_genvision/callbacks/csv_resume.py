"""Continue a CSV log on resume instead of deleting it.

Lightning's CSV writer deletes the ``metrics.csv`` it finds in its folder; a run resumed into its
own ``version_N`` would lose every row written before the resume. ``continue_csv_log`` gives the
logger a writer that keeps the file and appends to it (a new column rewrites the header and keeps
the old rows, as Lightning's writer already does).
"""

from __future__ import annotations

import csv

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class ContinuingExperimentWriter(ExperimentWriter):
    """Lightning's CSV experiment writer, minus the deletion of an existing ``metrics.csv``."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(header)


def continue_csv_log(logger: CSVLogger) -> None:
    """Make ``logger`` append to the ``metrics.csv`` already in its folder (call before it logs)."""
    if logger._experiment is None:
        logger._fs.makedirs(logger.root_dir, exist_ok=True)
        logger._experiment = ContinuingExperimentWriter(log_dir=logger.log_dir)
