"""Following a submitted study job: did it start, how did it end, what did it print.

A scheduled study that fails silently is the worst failure a batch tool can have, so ``study submit``
checks that Ray actually starts the job (a job whose entrypoint cannot even import texprobe fails within
seconds), and with ``--wait`` follows it to the end, streaming its log, and exits with its result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.errors import TexprobeError

__all__ = ["JobFailedError", "JobState", "wait_started", "follow", "study_jobs"]

_FINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class JobFailedError(TexprobeError):
    """The study's Ray job failed or was stopped (the message has Ray's reason and the log's last lines)."""


@dataclass(frozen=True)
class JobState:
    submission_id: str
    status: str
    message: str


def _state(client, sid: str) -> JobState:
    info = client.get_job_info(sid)
    return JobState(sid, str(getattr(info.status, "value", info.status)), (info.message or "").strip())


def _failure(client, state: JobState, address: str) -> JobFailedError:
    tail = "\n".join(client.get_job_logs(state.submission_id).strip().splitlines()[-5:])
    return JobFailedError(f"job {state.submission_id} {state.status.lower()}: {state.message or 'no reason given'}"
                          + (f"; last log lines: {tail}" if tail else "")
                          + f" (full log: `ray job logs {state.submission_id} --address {address}`)")


def wait_started(client, sid: str, address: str, *, timeout: float = 30.0, grace: float = 10.0,
                 poll: float = 1.0) -> JobState:
    """Wait until the job has run for ``grace`` seconds (an entrypoint that cannot start texprobe - a wrong
    interpreter, a missing module - dies within them) or ended well. A job that fails or stops meanwhile
    raises :class:`JobFailedError`; one still pending after ``timeout`` is returned (the cluster may be busy)."""
    deadline = time.monotonic() + timeout
    running_since = None
    while True:
        state = _state(client, sid)
        if state.status in ("FAILED", "STOPPED"):
            raise _failure(client, state, address)
        now = time.monotonic()
        if state.status == "RUNNING" and running_since is None:
            running_since = now
        if state.status == "SUCCEEDED" or (running_since is not None and now - running_since >= grace):
            return state
        if running_since is None and now > deadline:
            return state
        time.sleep(poll)


def follow(client, sid: str, address: str, *, echo: Callable[[str], None], poll: float = 2.0,
           timeout: float | None = None) -> JobState:
    """Stream the job's log through ``echo`` until it ends; SUCCEEDED is returned, anything else raises
    :class:`JobFailedError`."""
    shown = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = _state(client, sid)
        logs = client.get_job_logs(sid)
        if len(logs) > shown:
            for line in logs[shown:].rstrip("\n").splitlines():
                echo(line)
            shown = len(logs)
        if state.status in _FINAL:
            if state.status != "SUCCEEDED":
                raise _failure(client, state, address)
            return state
        if deadline is not None and time.monotonic() > deadline:
            raise JobFailedError(f"job {sid} still {state.status.lower()} after {timeout:g} s; it goes on: "
                                 f"`ray job logs {sid} -f --address {address}`")
        time.sleep(poll)


def study_jobs(client, study: str) -> list[JobState]:
    """The jobs submitted for ``study`` (by the metadata ``study submit`` gives them), oldest first."""
    jobs = [j for j in client.list_jobs() if (j.metadata or {}).get("study") == study and j.submission_id]
    jobs.sort(key=lambda j: j.start_time or 0)
    return [JobState(j.submission_id, str(getattr(j.status, "value", j.status)), (j.message or "").strip())
            for j in jobs]
