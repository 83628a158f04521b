"""Inspection engines beyond the edge ONNX one (each implements inspection.edge.engine.Inspector): the torch GPU engine
and the Ray engine (the same engines in the actors of a Ray cluster, `pip install 'inspection[cluster]'`)."""
