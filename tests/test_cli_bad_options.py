"""Bad options over every command (issue 7 part 4, issue 13 part 3): exit code 2, exactly ONE line on
stderr naming the problem, no traceback, and all of it BEFORE Ray starts: the run's Ray session is never
entered (a spy on pipelines.ray_runtime.ray_session), no manifest or table is written, and it is quick.
(``--resume`` with changed settings needs a real run first: tests/test_cli_end_to_end.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pipelines.ray_runtime as ray_runtime
from cli_helpers import DATA, REPO, assert_one_line_error, copy_images, texprobe

IMG = "{img}"  # placeholders filled per test: a folder of two stimuli, a content and a style folder
CONTENT = "{content}"
STYLE = "{style}"
UNKNOWN_RUN = "20260101T000000Z-abcdef"
MISSING = "/nonexistent/weights.pth"
#: base arguments per command (vgg19 with random weights: its ImageNet file may be absent here)
BASE = {
    "classify": ["classify", IMG],
    "grams": ["grams", IMG, "--backbone", "vgg19", "--weights", "random", "--size", "32"],
    "stylize": ["stylize", "--content", CONTENT, "--style", STYLE, "--backbone", "vgg19", "--weights", "random",
                "--size", "32", "--steps", "1"],
    "reconstruct": ["reconstruct", IMG, "--backbone", "vgg19", "--weights", "random", "--size", "32", "--steps", "1",
                    "--classifier", "none"],
}
RUN_COMMANDS = tuple(BASE)


def _with(command: str, *extra: str, drop_weights: bool = False) -> list[str]:
    args = list(BASE[command])
    if drop_weights and "--weights" in args:
        i = args.index("--weights")
        del args[i : i + 2]
    return [*args, *extra]


CASES: list[tuple[str, list[str], str]] = []
for cmd in RUN_COMMANDS:
    CASES += [
        (f"{cmd}-batch-size-neg", _with(cmd, "--batch-size", "-1"), "--batch-size"),
        (f"{cmd}-batch-size-0", _with(cmd, "--batch-size", "0"), "--batch-size"),
        (f"{cmd}-actors-neg", _with(cmd, "--actors", "-1"), "--actors"),
        (f"{cmd}-retries-neg", _with(cmd, "--retries", "-1"), "--retries"),
        (f"{cmd}-weights-not-a-state-dict", _with(cmd, "--weights", "/etc/hostname", drop_weights=True), "/etc/hostname"),
        (f"{cmd}-weights-missing", _with(cmd, "--weights", MISSING, drop_weights=True), MISSING),
        (f"{cmd}-resume-unknown", _with(cmd, "--resume", UNKNOWN_RUN), UNKNOWN_RUN),
        (f"{cmd}-unknown-option", _with(cmd, "--bogus-option", "1"), "--bogus-option"),
    ]
CASES += [
    ("classify-unit-size-0", _with("classify", "--unit-size", "0"), "--unit-size"),
    ("grams-unit-size-0", _with("grams", "--unit-size", "0"), "--unit-size"),
    ("classify-unknown-model", _with("classify", "--model", "alexnetz"), "alexnetz"),
    ("classify-missing-input", ["classify", "/nonexistent/images"], "/nonexistent/images"),
    ("grams-unknown-backbone", _with("grams", "--backbone", "alexnetz"), "alexnetz"),
    ("stylize-unknown-backbone", _with("stylize", "--backbone", "alexnetz"), "alexnetz"),
    ("reconstruct-unknown-backbone", _with("reconstruct", "--backbone", "alexnetz"), "alexnetz"),
    ("grams-normalization-bogus", _with("grams", "--normalization", "bogus"), "bogus"),
    ("grams-pooling-bogus", _with("grams", "--pooling", "bogus"), "bogus"),
    ("grams-size-neg", _with("grams", "--size", "-5"), "--size"),
    ("grams-unknown-layer", _with("grams", "--layers", "conv9_9"), "conv9_9"),
    ("grams-empty-layers", _with("grams", "--layers", ","), "no layers"),
    ("reconstruct-kind-style", _with("reconstruct", "--kind", "style"), "style"),
    ("reconstruct-unknown-layer", _with("reconstruct", "--layers", "conv9_9"), "conv9_9"),
    ("reconstruct-unknown-classifier", _with("reconstruct", "--classifier", "alexnetz"), "alexnetz"),
    ("reconstruct-optimizer-bogus", _with("reconstruct", "--optimizer", "bogus"), "bogus"),
    ("stylize-pairs-bogus", _with("stylize", "--pairs", "bogus"), "bogus"),
    ("stylize-unknown-style-layer", _with("stylize", "--style-layers", "conv9_9"), "conv9_9"),
    ("stylize-unknown-content-layer", _with("stylize", "--content-layer", "conv9_9"), "conv9_9"),
    ("stylize-unknown-preset", _with("stylize", "--preset", "bogus-preset"), "bogus-preset"),
    ("stylize-init-bogus", _with("stylize", "--init", "bogus"), "bogus"),
    ("stylize-size-tiny", _with("stylize", "--size", "2"), "--size"),
    ("stylize-unknown-classifier", _with("stylize", "--classify", "alexnetz"), "alexnetz"),
    ("stylize-missing-style", ["stylize", "--content", CONTENT, "--style", "/nonexistent/style", "--backbone", "vgg19",
                               "--weights", "random", "--size", "32", "--steps", "1"], "/nonexistent/style"),
    ("import-mvh-missing-file", ["import-mvh", "/nonexistent/trials.csv"], "/nonexistent/trials.csv"),
    ("sql-format-bogus", ["sql", "SELECT 1", "--format", "bogus"], "bogus"),
    ("sql-store-missing", ["sql", "SELECT 1"], "does not exist"),
    ("data-fetch-unknown", ["data", "fetch", "no-such-dataset"], "no-such-dataset"),
    ("models-extra-argument", ["models", "extra"], "extra"),
    ("quickstart-unknown-model", ["quickstart", "--model", "alexnetz"], "alexnetz"),
]
#: seconds a rejected command may take (imports included; generous: the test machine is shared)
FAST_S = 30.0


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("badopts")
    cats = sorted((DATA / "cue-conflict" / "cat").glob("*.png"))[:2]
    return {
        "img": str(copy_images(root / "img", cats)),
        "content": str(copy_images(root / "content", [DATA / "filled-silhouettes/bear/bear1.png"])),
        "style": str(copy_images(root / "style", [sorted((DATA / "cue-conflict/clock").glob("*.png"))[0]])),
    }


@pytest.fixture
def ray_spy(monkeypatch):
    """Records every entry into a run's Ray session (the runner imports ray_session when it needs it)."""
    calls: list[tuple] = []
    real = ray_runtime.ray_session

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ray_runtime, "ray_session", spy)
    return calls


def _fill(args: list[str], folders: dict[str, str]) -> list[str]:
    return [a.format(**folders) if a in (IMG, CONTENT, STYLE) else a for a in args]


@pytest.mark.parametrize(("args", "mentions"), [pytest.param(a, m, id=i) for i, a, m in CASES])
def test_bad_option_is_one_line_exit_2_before_ray(args, mentions, folders, ray_spy, tmp_path):
    store = tmp_path / "store"
    started = time.perf_counter()
    res = texprobe(*_fill(args, folders), *(["--store", str(store)] if args[0] not in ("models", "data") else []))
    seconds = time.perf_counter() - started
    assert_one_line_error(res, mentions=mentions)
    assert ray_spy == [], "Ray was started for a bad option"
    # nothing on disk, not even an empty store folder (issue 20: a rejected command creates nothing)
    assert not store.exists(), sorted(map(str, store.rglob("*")))
    assert seconds < FAST_S, f"took {seconds:.1f} s"


@pytest.mark.parametrize(("args", "mentions"), [
    pytest.param(["classify", "{img}", "--batch-size", "0"], "--batch-size", id="typer-bound"),
    pytest.param(["grams", "{img}", "--backbone", "vgg19", "--weights", "/etc/hostname"], "/etc/hostname",
                 id="driver-check"),
])
def test_bad_option_in_a_real_process_is_one_stderr_line(args, mentions, folders, tmp_path):
    """The same contract seen from outside: a subprocess's whole stderr (warnings included) is one line."""
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", *_fill(args, folders), "--store", str(store)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and mentions in lines[0], out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert not store.exists()  # nothing written, not even the folder
