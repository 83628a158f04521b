"""Scoring from per-image result records: one metrics function for torch, ONNX and edge outputs alike."""
