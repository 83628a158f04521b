"""Datasets: manifests, importers, synthetic generator, splits, torch Dataset/DataModule."""
