"""DefectClassifier: one LightningModule for every backbone; takes uint8 NHWC batches and normalises on device."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from inspection.core.errors import ConfigError
from inspection.core.postprocess import Thresholds
from inspection.core.preprocess import PreprocessSpec
from inspection.data.augment import AugmentConfig
from inspection.data.gpu_augment import augment_batch
from inspection.models.factory import create_backbone
from inspection.models.normalize import Normalize
from inspection.models.segdec import has_defect_map


class DefectClassifier(pl.LightningModule):
    """Backbone by name + cross-entropy (optionally class-weighted); logs loss, accuracy and macro-F1.

    A defect-map network (models.segdec) adds a pixel loss on the batches' masks where they are known (mixed
    supervision): total = cross-entropy + seg_weight · BCE(map, mask)."""

    def __init__(
        self,
        backbone: str,
        class_names: list[str],
        preprocess: dict,
        thresholds: dict | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        scheduler: str = "onecycle",
        label_smoothing: float = 0.0,
        class_weights: list[float] | None = None,
        drop_rate: float = 0.0,
        pretrained_path: str | None = None,
        channels_last: bool = False,
        gpu_augment: dict | None = None,
        extra: dict | None = None,
        seg_weight: float = 1.0,
        seg_pos_weight: float = 4.0,
    ):
        super().__init__()
        # Plain values only: the checkpoint stays loadable with weights_only=True.
        self.save_hyperparameters(ignore=["pretrained_path"])
        self.spec = PreprocessSpec.from_dict(preprocess)
        self.class_names = list(class_names)
        self.thresholds = Thresholds.from_dict(thresholds or {})
        self.net = create_backbone(backbone, len(class_names), self.spec.channels, pretrained_path, drop_rate)
        self.normalize = Normalize(self.spec, channels_last=channels_last)
        self.defect_map = has_defect_map(self.net)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        cw = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", cw, persistent=False)
        self.gpu_augment = AugmentConfig(**gpu_augment) if gpu_augment else None
        self._val_preds: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def forward(self, x_u8: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x_u8))

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, weight=self.class_weights,
                               label_smoothing=self.hparams.label_smoothing)

    def _pixel_loss(self, map_logits: torch.Tensor, masks: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Mean BCE over the images whose mask is known; masks float N1HW in [0, 1] at the input size."""
        target = F.interpolate(masks, size=map_logits.shape[-2:], mode="area")
        pos = torch.tensor(self.hparams.seg_pos_weight, device=map_logits.device)  # defects are small
        per_image = F.binary_cross_entropy_with_logits(map_logits.float(), target, pos_weight=pos,
                                                       reduction="none").mean((1, 2, 3))
        k = known.float()
        return (per_image * k).sum() / k.sum().clamp(min=1)

    def training_step(self, batch, _idx):
        x, y, *pixel = batch
        xn = self.normalize(x)
        if self.defect_map and pixel:
            masks, known = pixel[0][:, None].float() * (1.0 / 255.0), pixel[1]
            if self.gpu_augment is not None:
                xn, masks = augment_batch(xn, self.gpu_augment, mask=masks)
            logits, map_logits = self.net(xn, with_map=True)
            pixel_loss = self._pixel_loss(map_logits, masks, known)
            self.log("train/pixel_loss", pixel_loss, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
            loss = self._loss(logits, y) + self.hparams.seg_weight * pixel_loss
        else:
            logits = self.net(augment_batch(xn, self.gpu_augment) if self.gpu_augment is not None else xn)
            loss = self._loss(logits, y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        return loss

    def validation_step(self, batch, _idx):
        x, y = batch[:2]
        logits = self(x)
        self.log("val/loss", self._loss(logits, y), on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self._val_preds.append(logits.argmax(1).detach())
        self._val_targets.append(y.detach())

    def on_validation_epoch_end(self) -> None:
        if not self._val_preds:
            return
        pred, y = torch.cat(self._val_preds), torch.cat(self._val_targets)
        if self.trainer.world_size > 1:  # every rank saw a shard: score the whole split on each
            pred, y = self.all_gather(pred).flatten(), self.all_gather(y).flatten()
        self._val_preds.clear()
        self._val_targets.clear()
        n = len(self.class_names)
        cm = torch.bincount(y * n + pred, minlength=n * n).reshape(n, n).float()
        tp = cm.diag()
        f1 = 2 * tp / (cm.sum(0) + cm.sum(1)).clamp(min=1)
        self.log("val/acc", (pred == y).float().mean(), prog_bar=True, rank_zero_only=True)
        self.log("val/macro_f1", f1.mean(), rank_zero_only=True)

    def test_step(self, batch, _idx):
        x, y = batch[:2]
        self.log("test/acc", (self(x).argmax(1) == y).float().mean(), batch_size=len(y), sync_dist=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.scheduler == "none":
            return opt
        steps = self.trainer.estimated_stepping_batches
        if self.hparams.scheduler == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.hparams.lr, total_steps=max(1, int(steps)),
                                                        pct_start=0.2)
        elif self.hparams.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(steps)))
        else:
            raise ConfigError(f"unknown scheduler {self.hparams.scheduler!r} (onecycle, cosine, none)")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Enough to rebuild the network without Lightning (see models.checkpoint.load_checkpoint).
        checkpoint["inspection"] = {
            "backbone": self.hparams.backbone,
            "class_names": self.class_names,
            "preprocess": self.spec.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "extra": self.hparams.extra or {},
        }

    def plain_net(self) -> nn.Module:
        """The bare network (expects normalised NCHW float), in standard memory format, for export/eval."""
        return self.net.to(memory_format=torch.contiguous_format)
