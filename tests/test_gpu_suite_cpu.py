"""The GPU benchmark suite (benchmarks/gpu, issue 12 part 1) runs end to end on CPU with tiny sizes,
without Ray / DuckDB / pyarrow / typer / pandas (the GPU machines have torch, numpy and Pillow only), and
writes results that follow the schema; its FLOP rule equals torch's own FLOP counter on the network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.gpu.flops import conv_forward_flops, evaluation_flops
from benchmarks.gpu.schema import SchemaError, validate
from benchmarks.gpu.transfer import gatys_loss
from nstcore.backbones import create_backbone

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("ray", "duckdb", "pyarrow", "typer", "pandas", "pipelines", "analysis")
RUNNER = """
import importlib.abc, importlib.machinery, runpy, sys
class Refuse(importlib.abc.Loader):
    def create_module(self, spec):
        raise ImportError("benchmarks.gpu must not import " + spec.name + " (absent on the GPU machines)")
    def exec_module(self, module):
        pass
class Block(importlib.abc.MetaPathFinder):  # probes (find_spec) see the module; importing it fails
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            return importlib.machinery.ModuleSpec(name, Refuse())
sys.meta_path.insert(0, Block())
sys.argv = ["benchmarks.gpu", *{argv!r}]
runpy.run_module("benchmarks.gpu", run_name="__main__")
"""


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "gpu-cpu.json"
    argv = ["--device", "cpu", "--threads", "1", "--size", "32", "--batches", "1,2", "--variants", "fp32,channels_last",
            "--steps", "2", "--warmup", "1", "--reconstruct-batch", "2", "--reconstruct-layers", "relu1_1,relu2_1",
            "--reconstruct-variant", "fp32", "--classify-images", "8", "--classify-batch", "4", "--workers", "2",
            "--out", str(out)]
    proc = subprocess.run([sys.executable, "-c", RUNNER.format(blocked=BLOCKED, argv=argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_cpu_smoke_run_writes_valid_results(cpu_run):
    result, stdout = cpu_run
    validate(result)
    assert result["device"]["name"] == "cpu-" + __import__("platform").machine()
    rows = {(r["batch"], r["variant"]): r for r in result["transfer"]}
    assert set(rows) == {(1, "fp32"), (2, "fp32"), (1, "channels_last"), (2, "channels_last")}
    for row in rows.values():
        assert "error" not in row, row
        # warmup 1 + steps 2 = max_iter 3: torch's max_eval rule (3 * 5 // 4 = 3) ends L-BFGS after 2 iterations
        assert row["timed_steps"] == 1 and row["peak_memory_bytes"] is None
        # images/hour at 500 steps and TFLOP/s follow from the measured step time and the FLOP count
        assert row["images_per_hour_500_steps"] == pytest.approx(3600 * row["batch"] / (500 * row["per_step_s"]))
        assert row["achieved_tflops"] == pytest.approx(row["batch"] * result["flops_per_image_step"] / row["per_step_s"] / 1e12)
        assert row["speedup_vs_tutorial"] > 0
    assert result["tutorial"]["timed_evaluations"] >= 1 and result["tutorial"]["per_step_s"] > 0
    assert [r["layer"] for r in result["reconstruct"]] == ["relu1_1", "relu2_1"]
    assert result["reconstruct"][1]["flops_per_image_step"] == 2 * conv_forward_flops(32, "conv2_1")
    cls = result["classify"]
    assert cls["images"] == 8 and cls["pre_decoded_images_per_s"] > 0 and cls["parallel_decode_images_per_s"] > 0
    assert cls["process_workers"] == 2 and cls["parallel_decode_processes_images_per_s"] > 0
    assert cls["decode_only_processes_images_per_s"] > 0
    assert "wrote" in stdout


def test_committed_gpu_results_follow_the_schema():
    """Every results file a device session brought back validates (older ones lack the process rows)."""
    found = sorted((REPO / "benchmarks" / "results").glob("gpu-*.json"))
    assert found, "no GPU results committed"
    for path in found:
        validate(json.loads(path.read_text()))


def test_schema_rejects_broken_results(cpu_run):
    result, _ = cpu_run
    broken = json.loads(json.dumps(result))
    broken["transfer"][0]["images_per_hour_500_steps"] *= 2
    with pytest.raises(SchemaError, match="images_per_hour"):
        validate(broken)
    broken = json.loads(json.dumps(result))
    broken["transfer"].pop()
    with pytest.raises(SchemaError, match="transfer rows cover"):
        validate(broken)
    broken = json.loads(json.dumps(result))
    del broken["device"]["name"]
    with pytest.raises(SchemaError, match="device.name"):
        validate(broken)


def test_flop_rule_matches_torch_flop_counter():
    """The analytic count (benchmarks/gpu/flops.py) against torch.utils.flop_counter on the real loss:
    forward + input-gradient backward of VGG-19 to relu5_1 with the Gatys layers' Grams."""
    model = create_backbone("vgg19", weights="random", seed=0)
    loss, cfg = gatys_loss(model, autocast="float32", channels_last=False)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 48, 48, generator=gen)
    loss.set_targets(content=images, style=images.flip(0))
    x = torch.rand(2, 3, 48, 48, generator=gen, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        loss(x).total.sum().backward()
    want = evaluation_flops(48, list(cfg.content_layers), list(cfg.style_layers))
    assert counter.get_total_flops() == 2 * want["total"]
    assert evaluation_flops(512, ["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])[
        "conv_forward"] == pytest.approx(189.35e9, rel=1e-4)
