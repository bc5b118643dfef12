"""Record the data module's class list in every checkpoint, so the tools that take a class by name
(``sample --layout``) map it without the data on disk, and after the data module's class order changed."""

from __future__ import annotations

from typing import Any

import lightning as L

#: The checkpoint entry: ``{"names": [...], "ids": [...]}``, index k naming class k of ``box_labels`` and of the
#: semantic map (an id is what else a user calls the class: a digit, an Open Images MID; "" where none).
CLASSES_KEY = "lit_genvision_classes"


class ClassNames(L.Callback):
    """Writes ``class_names`` (and ``class_ids``) of the trainer's data module into each checkpoint under
    ``CLASSES_KEY``; a data module without class names writes nothing."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        names = list(getattr(datamodule, "class_names", None) or [])
        if names:
            ids = [str(i) for i in getattr(datamodule, "class_ids", None) or []]
            checkpoint[CLASSES_KEY] = {"names": names, "ids": ids if len(ids) == len(names) else []}
