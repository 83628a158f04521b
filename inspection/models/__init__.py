"""Backbones by name, the Lightning classifier, and checkpoint save/load (hyperparameters + state_dict)."""

from inspection.models.checkpoint import LoadedModel, load_checkpoint, save_checkpoint
from inspection.models.factory import available_backbones, create_backbone

__all__ = ["LoadedModel", "available_backbones", "create_backbone", "load_checkpoint", "save_checkpoint"]
