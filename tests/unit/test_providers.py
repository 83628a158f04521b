"""GPU library preloading for onnxruntime-gpu without torch: called once, only where a CUDA build asks for it."""

from __future__ import annotations

import logging

import pytest

from inspection.edge import providers


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    made: list[int] = []
    monkeypatch.setattr(providers, "_preloaded", False)
    monkeypatch.setattr(providers.ort, "preload_dlls", lambda: made.append(1), raising=False)
    return made


def test_cpu_build_preloads_nothing(calls: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [providers.CPU])
    providers.preload_gpu_libraries()
    assert calls == []


def test_cuda_build_preloads_once(calls: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [providers.CUDA, providers.CPU])
    providers.preload_gpu_libraries()
    providers.preload_gpu_libraries()
    assert calls == [1]


def test_failed_preload_warns_and_carries_on(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    def broken() -> None:
        raise OSError("libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(providers, "_preloaded", False)
    monkeypatch.setattr(providers.ort, "preload_dlls", broken, raising=False)
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [providers.CUDA, providers.CPU])
    with caplog.at_level(logging.WARNING, logger="inspection.edge"):
        providers.preload_gpu_libraries()
    assert "libcudnn.so.9" in caplog.text
