"""create_app: the HTTP routes around one OnnxInspector — /v1/inspect, /v1/model, /healthz, /readyz, /metrics.

Every refusal is a JSON `{"error": "...", "kind": "..."}` with a 4xx/5xx status, counted in /metrics by kind; no
bad request can take the service down (decode errors, limits and timeouts are all answered, never raised).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from inspection.core.errors import ImageDecodeError
from inspection.core.preprocess import decode_model_input
from inspection.core.results import ImageResult
from inspection.edge.inspector import OnnxInspector
from inspection.edge.runner import to_row
from inspection.edge.serve.batcher import Closing, MicroBatcher, QueueFull
from inspection.edge.serve.metrics import CONTENT_TYPE, ServeMetrics
from inspection.edge.serve.settings import ServeSettings
from inspection.edge.serve.uploads import ServeError, read_images
from inspection.edge.writers import ResultWriter, jsonl_row

ROUTES = ("/v1/inspect", "/v1/model", "/healthz", "/readyz", "/metrics")


class RequestCounter:
    """ASGI middleware: count every response by route (unknown paths as `other`) and status code."""

    def __init__(self, app, metrics: ServeMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status = {"code": 500}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.metrics.requests[(route, status["code"])] += 1


class Service:
    """What the routes share: the model, the batcher, the decode threads, the log and the metrics."""

    def __init__(self, inspector: OnnxInspector, settings: ServeSettings):
        self.inspector, self.settings = inspector, settings
        self.metrics = ServeMetrics()
        self.batcher = MicroBatcher(inspector.predict_with_map, settings.max_batch, settings.max_wait_ms / 1000,
                                    settings.max_queue, on_batch=self.metrics.observe_batch)
        self.metrics.queue_depth = lambda: self.batcher.queued_images
        self.decode_pool = ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="decode")
        self.log = ResultWriter(settings.log_jsonl, settings.top_k, append=True,
                                defect_map=inspector.card.defect_threshold is not None) if settings.log_jsonl else None
        self.ready = False

    def check_token(self, request: Request) -> None:
        if self.settings.token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ServeError(401, "auth", "missing bearer token: send `Authorization: Bearer <token>`")
        if not hmac.compare_digest(token.strip().encode(), self.settings.token.encode()):
            raise ServeError(401, "auth", "wrong bearer token")

    def _decode(self, name: str, data: bytes) -> np.ndarray:
        return decode_model_input(data, name, self.inspector.spec, self.settings.max_pixels)

    async def decode_all(self, images: list[tuple[str, bytes]]) -> list[np.ndarray]:
        """Model-size pixels per image, decoded in the decode threads; any bad image → 422 naming each one."""
        loop = asyncio.get_running_loop()
        done = await asyncio.gather(*(loop.run_in_executor(self.decode_pool, self._decode, n, d) for n, d in images),
                                    return_exceptions=True)
        bad = [f"{e.path}: {e.reason}" if isinstance(e, ImageDecodeError) else f"{n}: {type(e).__name__}: {e}"
               for (n, _), e in zip(images, done, strict=True) if isinstance(e, BaseException)]
        if bad:
            raise ServeError(422, "decode", "; ".join(bad))
        return list(done)

    async def inspect(self, request: Request, top_k: int, name: str | None, phase: dict) -> list[dict]:
        s = self.settings
        images = await read_images(request, s.max_body_bytes, s.max_files, name)
        phase["now"] = "inspect"
        pixels = await self.decode_all(images)
        try:
            outcomes = await self.batcher.submit(pixels)
        except QueueFull as e:
            raise ServeError(503, "busy", f"the service is busy: {e}; retry later") from None
        except Closing as e:
            raise ServeError(503, "closing", str(e)) from None
        insp = self.inspector
        verdicts = insp.decide(np.stack([p for p, _ in outcomes]))
        k = min(top_k, len(insp.class_names))
        rows = [to_row(ImageResult(n, probs=p, verdict=v, defect_map=m), insp.class_names, k, insp.model_hash,
                       insp.card.defect_threshold)
                for (n, _), (p, m), v in zip(images, outcomes, verdicts, strict=True)]
        if self.log is not None:
            self.log.write_rows(rows)
        for row in rows:
            self.metrics.verdicts[row["verdict"]] += 1
        return [jsonl_row(r) | {"card_version": insp.card.card_version} for r in rows]

    def model_info(self) -> dict:
        s, insp = self.settings, self.inspector
        return {"file": insp.path.name, "model_hash": insp.model_hash, "runs_on": insp.runs_on(),
                "card": insp.card.to_dict(),
                "serve": {"max_batch": s.max_batch, "max_wait_ms": s.max_wait_ms, "max_body_bytes": s.max_body_bytes,
                          "max_pixels": s.max_pixels, "max_files": s.max_files, "timeout_s": s.timeout_s,
                          "top_k": s.top_k, "auth": s.token is not None}}

    async def start(self) -> None:
        self.batcher.start()
        spec = self.inspector.spec  # warm-up: ORT allocates on the first run; /readyz waits for it
        await self.batcher.submit([np.zeros((spec.height, spec.width, spec.channels), np.uint8)])
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.batcher.close(self.settings.drain_s)
        self.decode_pool.shutdown(wait=True)
        if self.log is not None:
            self.log.close()


def _error(e: ServeError, metrics: ServeMetrics) -> JSONResponse:
    metrics.errors[e.kind] += 1
    headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
    return JSONResponse({"error": e.message, "kind": e.kind}, status_code=e.status, headers=headers)


def create_app(inspector: OnnxInspector, settings: ServeSettings) -> FastAPI:
    """The service for one loaded model; uvicorn runs it (edge.serve.cli)."""
    svc = Service(inspector, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await svc.start()
        yield
        await svc.stop()  # uvicorn has already let in-flight requests finish (--drain)

    app = FastAPI(title="inspection serve", summary=inspector.describe(), lifespan=lifespan, docs_url=None,
                  redoc_url=None)  # no Swagger UI: it loads from a CDN, and line PCs are offline
    app.state.service = svc

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, e: ServeError) -> JSONResponse:
        return _error(e, svc.metrics)

    @app.exception_handler(RequestValidationError)
    async def bad_params(request: Request, e: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        return _error(ServeError(400, "bad_request", where), svc.metrics)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return _error(ServeError(e.status_code, "http", str(e.detail)), svc.metrics)

    @app.post("/v1/inspect")
    async def inspect(request: Request, top_k: int | None = None, name: str | None = None) -> JSONResponse:
        """One image (body `image/*`) or several (multipart/form-data) → one `inspect` row per image."""
        t0 = time.perf_counter()
        svc.check_token(request)
        k = settings.top_k if top_k is None else top_k
        if k < 1:
            raise ServeError(400, "bad_request", f"top_k must be >= 1, got {k}")
        phase = {"now": "upload"}
        try:
            rows = await asyncio.wait_for(svc.inspect(request, k, name, phase), settings.timeout_s)
        except asyncio.TimeoutError:
            if phase["now"] == "upload":
                raise ServeError(408, "timeout", f"the request body did not arrive within {settings.timeout_s} s "
                                                 "(--timeout)") from None
            raise ServeError(504, "timeout", f"inspection did not finish within {settings.timeout_s} s "
                                             "(--timeout)") from None
        svc.metrics.latency.observe(time.perf_counter() - t0)
        return JSONResponse(rows)

    @app.get("/v1/model")
    async def model(request: Request) -> JSONResponse:
        """The model card, file hash, execution provider and the service's limits."""
        svc.check_token(request)
        return JSONResponse(svc.model_info())

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """The process answers (liveness)."""
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """The model is loaded and warmed up, and the service is not shutting down (readiness)."""
        return JSONResponse({"ready": svc.ready}, status_code=200 if svc.ready else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        """Prometheus text format."""
        svc.check_token(request)
        return PlainTextResponse(svc.metrics.render(), media_type=CONTENT_TYPE)

    app.add_middleware(RequestCounter, metrics=svc.metrics)
    return app
