"""Keep the best-on-validation weights in memory instead of writing a checkpoint file at every improvement.

Writing a full Lightning checkpoint (weights + optimiser state, ~130 MB for resnet18) on each better epoch costs
more than a short GPU epoch; a device-side copy of the state_dict costs microseconds.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class BestWeights(Callback):
    """Tracks `monitor` (higher is better) after each validation and snapshots the module's weights when it improves."""

    def __init__(self, monitor: str = "val/acc"):
        self.monitor = monitor
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        # Ties keep the earlier epoch, as ModelCheckpoint(mode="max") does.
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch = score, trainer.current_epoch
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def restore(self, module: pl.LightningModule) -> bool:
        """Load the best snapshot into `module`; False when validation never produced the metric."""
        if self.state is None:
            return False
        module.load_state_dict(self.state)
        return True
