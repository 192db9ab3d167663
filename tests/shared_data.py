"""Where the tests find data that is not in the repository (published CSVs, upstream checkouts).

The data lives beside the clone, at ``<repo>/../shared/data`` (never an absolute path), or wherever
``$TEXPROBE_SHARED_DATA`` points. A test that needs some of it says so with a marker::

    from shared_data import SHARED_DATA
    MVH = SHARED_DATA / "model-vs-human" / "cue-conflict"

    @pytest.mark.shared_data("model-vs-human/cue-conflict", "texture-vs-shape/raw-data")
    def test_published_figures(): ...

When a named path is missing, tests/conftest.py FAILS the test under CI (``CI`` set to ``true``/``1``,
as CI services and ``.ci/run`` do) with a message naming the path, and skips it with that reason
elsewhere (a laptop without the data). Nothing here reads the data.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA", "ENV_VAR", "REPO", "SHARED_DATA", "in_ci", "missing", "missing_message", "shared_data_dir"]

REPO = Path(__file__).resolve().parents[1]
#: The data bundled in the repository (``<repo>/data``); the rest lives in :data:`SHARED_DATA`.
DATA = REPO / "data"
#: Environment variable that overrides the shared data folder.
ENV_VAR = "TEXPROBE_SHARED_DATA"


def shared_data_dir() -> Path:
    """``$TEXPROBE_SHARED_DATA`` if set, else ``<repo>/../shared/data``."""
    override = os.environ.get(ENV_VAR)
    return Path(override).expanduser().absolute() if override else REPO.parent / "shared" / "data"


SHARED_DATA = shared_data_dir()


def in_ci() -> bool:
    """True under CI (``CI`` is ``true``, ``1`` or ``yes``, any case)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(relpaths: tuple[str, ...] | list[str], root: Path | None = None) -> list[Path]:
    """The paths under the shared data folder (``root``) that do not exist."""
    base = root if root is not None else shared_data_dir()
    return [base / rel for rel in relpaths if not (base / rel).exists()]


def missing_message(paths: list[Path]) -> str:
    """One line: what is missing, where it was looked for, what to do."""
    shown = ", ".join(str(p) for p in paths)
    return (
        f"shared test data missing: {shown}. The tests look for it in {shared_data_dir()} "
        f"(the repository's ../shared/data, or ${ENV_VAR}); put the data there or point "
        f"{ENV_VAR} at it."
    )
