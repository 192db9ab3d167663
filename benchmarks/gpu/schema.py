"""The results file ``benchmarks/results/gpu-<device>.json`` and its validation.

Top level: ``schema`` (:data:`SCHEMA`), ``device`` (``name`` and properties), ``config`` (the command's
options), ``flops_per_image_step`` (the analytic count of :mod:`benchmarks.gpu.flops` at ``size``),
``transfer`` (one row per batch x variant), ``tutorial`` (the reference row), ``reconstruct`` (one row
per layer), ``classify`` (one row or null), ``started_at`` (UTC ISO time), ``wall_s``. A measured row has
``per_step_s`` > 0, ``images_per_hour_500_steps``, ``achieved_tflops``, ``peak_memory_bytes`` (int on
CUDA, null on CPU); a failed one has ``error`` (a string) instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

__all__ = ["SCHEMA", "SchemaError", "problems", "validate"]

SCHEMA = "texprobe-gpu-bench/1"
_TOP = ("schema", "device", "config", "flops_per_image_step", "transfer", "tutorial", "reconstruct", "classify",
        "started_at", "wall_s")
_MEASURED = ("per_step_s", "images_per_hour_500_steps", "achieved_tflops", "flops_per_image_step")


class SchemaError(ValueError):
    """A GPU-benchmark results file that does not follow the schema."""


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _row_problems(where: str, row: Any, keys: tuple[str, ...], cuda: bool) -> Iterator[str]:
    if not isinstance(row, dict):
        yield f"{where}: not an object"
        return
    for key in keys:
        if key not in row:
            yield f"{where}: missing {key!r}"
    if "error" in row:
        if not isinstance(row["error"], str) or not row["error"]:
            yield f"{where}: 'error' must be a non-empty string"
        return
    for key in _MEASURED:
        if not _positive(row.get(key)):
            yield f"{where}: {key!r} must be a positive number, got {row.get(key)!r}"
    if _positive(row.get("per_step_s")) and _positive(row.get("batch")) and _positive(row.get("images_per_hour_500_steps")):
        want = 3600.0 * row["batch"] / (500 * row["per_step_s"])
        if abs(row["images_per_hour_500_steps"] - want) > 1e-6 * want:
            yield f"{where}: images_per_hour_500_steps {row['images_per_hour_500_steps']} != 3600 B / (500 per_step_s)"
    peak = row.get("peak_memory_bytes", "missing")
    if cuda and not (isinstance(peak, int) and peak > 0):
        yield f"{where}: peak_memory_bytes must be a positive int on CUDA, got {peak!r}"
    if not cuda and peak is not None:
        yield f"{where}: peak_memory_bytes must be null on CPU (not tracked), got {peak!r}"


def problems(result: Any) -> list[str]:
    """Everything wrong with ``result`` (empty when it follows the schema)."""
    if not isinstance(result, dict):
        return ["the results must be a JSON object"]
    out = [f"missing top-level key {key!r}" for key in _TOP if key not in result]
    if out:
        return out
    if result["schema"] != SCHEMA:
        out.append(f"schema is {result['schema']!r}, expected {SCHEMA!r}")
    device = result["device"]
    if not isinstance(device, dict) or not isinstance(device.get("name"), str) or not device["name"]:
        out.append("device.name must be a non-empty string")
        return out
    cuda = str(device.get("device", "")).startswith("cuda")
    config = result["config"]
    if not _positive(result["flops_per_image_step"]):
        out.append("flops_per_image_step must be a positive number")
    want = {(b, v) for b in config.get("batches", []) for v in config.get("variants", [])}
    got = {(r.get("batch"), r.get("variant")) for r in result["transfer"] if isinstance(r, dict)}
    if want != got:
        out.append(f"transfer rows cover {sorted(got)}, config asks for {sorted(want)}")
    for i, row in enumerate(result["transfer"]):
        out += _row_problems(f"transfer[{i}]", row, ("batch", "variant", "size"), cuda)
        if isinstance(row, dict) and "error" not in row and result["tutorial"].get("per_step_s"):
            if not _positive(row.get("speedup_vs_tutorial")):
                out.append(f"transfer[{i}]: speedup_vs_tutorial missing")
    out += _row_problems("tutorial", result["tutorial"], ("batch", "variant", "size"), cuda)
    layers = config.get("reconstruct_layers", [])
    if [r.get("layer") for r in result["reconstruct"]] != list(layers):
        out.append(f"reconstruct rows are not one per layer of {layers}")
    for i, row in enumerate(result["reconstruct"]):
        out += _row_problems(f"reconstruct[{i}]", row, ("layer", "batch", "variant"), cuda)
    cls = result["classify"]
    if cls is not None and "error" not in cls:
        for key in ("pre_decoded_images_per_s", "parallel_decode_images_per_s", "decode_only_images_per_s"):
            if not _positive(cls.get(key)):
                out.append(f"classify.{key} must be a positive number")
        for key in ("parallel_decode_processes_images_per_s", "decode_only_processes_images_per_s"):
            if key in cls and not _positive(cls[key]):  # absent from results taken before they were measured
                out.append(f"classify.{key} must be a positive number")
    if not _positive(result["wall_s"]):
        out.append("wall_s must be a positive number")
    return out


def validate(result: Any) -> None:
    """Raise :class:`SchemaError` listing every problem, if any."""
    found = problems(result)
    if found:
        raise SchemaError("GPU benchmark results do not follow the schema: " + "; ".join(found))
