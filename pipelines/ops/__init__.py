"""The registry of operations by name: adding a probe is one module here and one line below."""

from __future__ import annotations

import importlib

from pipelines.ops.base import Operation

#: operation name -> "module:class"
OPERATIONS: dict[str, str] = {
    "classify": "pipelines.ops.classify:ClassifyOp",
    "grams": "pipelines.ops.grams:GramsOp",
    "stylize": "pipelines.ops.stylize:StylizeOp",
    "reconstruct": "pipelines.ops.reconstruct:ReconstructOp",
    "visualize": "pipelines.ops.visualize:VisualizeOp",
    "exemplars": "pipelines.ops.exemplars:ExemplarsOp",
}


def get_operation(name: str) -> type[Operation]:
    """The operation class registered as ``name``, or given by its import path ``package.module:Class``
    (an operation outside texprobe: importable on every node)."""
    try:
        module, cls = (OPERATIONS[name] if ":" not in name else name).split(":")
    except KeyError:
        from pipelines.errors import OptionError

        raise OptionError(f"unknown operation {name!r}; registered: {', '.join(sorted(OPERATIONS))}") from None
    return getattr(importlib.import_module(module), cls)


def list_operations() -> list[str]:
    return sorted(OPERATIONS)
