"""Inspection engines beyond the edge ONNX one (each implements inspection.edge.engine.Inspector): the torch GPU engine."""
