"""`inspection serve`: the torch-free HTTP inspection service (FastAPI + uvicorn over one ONNX Runtime session).

- `settings`  ServeSettings: bind address, token, limits (body, pixels, files, queue), timeouts, batching
- `batcher`   MicroBatcher: concurrent requests → one session run per batch (max batch, max wait)
- `metrics`   counters and histograms rendered in the Prometheus text format (no client library)
- `uploads`   request bodies → named encoded images: raw image bytes or multipart, with the body limits
- `app`       create_app: the routes (/v1/inspect, /v1/model, /healthz, /readyz, /metrics), auth, errors
- `cli`       `python -m inspection.edge serve MODEL.onnx` / `inspection serve`: argparse + uvicorn

Records are `edge.runner.to_row` rows, the ones `inspect` writes; the JSONL log uses `edge.writers.ResultWriter`.
Nothing here imports torch: the service runs from `pip install '.[edge,serve]'`.
"""
