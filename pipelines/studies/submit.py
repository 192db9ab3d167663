"""``texprobe study submit``: the study as a Ray Job with a deterministic submission id
``texprobe-<study>-<YYYYMMDD>`` (UTC), so that cron, a systemd timer or Airflow can submit it as often as
they like: a second submission on the same day finds the first (Ray answers "already exists")."""

from __future__ import annotations

import datetime as _dt
import os
import shlex
from dataclasses import dataclass

from pipelines.errors import ClusterError
from pipelines.studies.spec import StudySpec


@dataclass(frozen=True)
class Submission:
    submission_id: str
    created: bool  # False: a job with this id existed already
    status: str


def submission_id(spec: StudySpec, *, today: _dt.date | None = None) -> str:
    day = today or _dt.datetime.now(_dt.timezone.utc).date()
    return f"texprobe-{spec.name}-{day:%Y%m%d}"


def default_python(address: str) -> tuple[str, str]:
    """The interpreter the job runs ``texprobe`` with when ``--python`` is not given, and why: this very
    interpreter (``sys.executable``, which has texprobe installed) when the head is on this machine; else
    ``python`` from the head's PATH (say ``--python`` when that is not the one with texprobe)."""
    import socket
    import sys
    from urllib.parse import urlparse

    host = urlparse(address if "://" in address else f"http://{address}").hostname or ""
    local = host in ("127.0.0.1", "localhost", "::1", socket.gethostname())
    if local:
        return sys.executable, "the head is on this machine: the submitting interpreter"
    return "python", f"the head {host} is remote: `python` on its PATH (pass --python if texprobe lives elsewhere)"


def entrypoint(spec: StudySpec, *, python: str = "python", store: str | None = None) -> str:
    """The job's command: ``texprobe study run`` on the head node (the spec, its datasets and the store
    must be reachable there under the same paths, e.g. a shared filesystem or an object store)."""
    args = [python, "-m", "pipelines.cli", "study", "run", spec.path]
    if store:
        args += ["--store", store]
    return " ".join(shlex.quote(a) for a in args)


def client_for(address: str):
    """A Ray JobSubmissionClient for the job server at ``address`` (RAY_AUTH_TOKEN as bearer token)."""
    return _client(address)


def _client(address: str):
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    headers = {}
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token:  # token auth (RAY_AUTH_MODE=token on the cluster): the dashboard wants it as a bearer token
        headers["Authorization"] = f"Bearer {token.strip()}"
    try:
        return JobSubmissionClient(address, headers=headers or None)
    except AuthenticationError:
        raise ClusterError(f"the Ray job server at {address!r} refused the request: it uses token authentication "
                           f"and {'RAY_AUTH_TOKEN is not the cluster token' if token else 'no RAY_AUTH_TOKEN is set'}"
                           "; set RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on the head)") from None
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Ray job server at {address!r}: {' '.join(str(exc).split())[:300]}. "
                           "Give the head's dashboard address, e.g. --address http://HEAD:8265 (set RAY_AUTH_TOKEN "
                           "when the cluster uses token auth)") from None


def submit_study(spec: StudySpec, *, address: str, python: str | None = None, store: str | None = None,
                 today: _dt.date | None = None, client=None) -> Submission:
    """Submit ``spec`` to the Ray cluster whose job server (dashboard) is at ``address``; ``python``: the
    interpreter with texprobe on the head (default: :func:`default_python`)."""
    client = client or _client(address)
    python = python or default_python(address)[0]
    sid = submission_id(spec, today=today)
    try:
        client.submit_job(entrypoint=entrypoint(spec, python=python, store=store), submission_id=sid,
                          metadata={"study": spec.name, "spec": spec.path})
        created = True
    except RuntimeError as exc:
        if "already exists" not in str(exc):
            raise ClusterError(f"Ray refused job {sid}: {' '.join(str(exc).split())[:300]}") from None
        created = False
    return Submission(submission_id=sid, created=created, status=str(client.get_job_status(sid).value))
