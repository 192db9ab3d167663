"""The actor pool: units on a fixed number of actor slots, with replacement, retries and watchdogs.

* A slot whose actor dies (killed, OOM, node lost) gets a NEW actor; the unit it held goes back to the
  queue, up to ``retries`` extra attempts per unit. A unit fails only after its retries.
* Watchdogs: an actor that does not start within ``startup_timeout_s`` stops the run with a clear
  error (it usually means the cluster cannot place it); a unit running longer than ``unit_timeout_s``
  gets its actor killed and replaced, and is retried like a dead actor's unit.
* Two calls per actor: the one running and the next, already sent, so the actor never waits for the
  driver's round trip. The watchdog's clock of a call starts when the call before it returns, i.e. when
  it starts; units queued behind a call whose actor died go back to the queue without counting as an
  attempt.
* Units that take milliseconds (a header-only probe: 3.4 ms per 64 images) are sent several to a call,
  enough for :data:`CALL_S` seconds by the per-unit time measured so far: Ray's ~1.2 ms per call and the
  store's directory sync are paid once per call instead of once per unit. Each unit still lands as its
  own parts and counts, fails and retries on its own.

Why an actor pool over units rather than Ray Data ``map_batches``: every unit must land as one
atomically written, deterministically named part per table (resume, no duplicates), and the expensive
probes take minutes per unit, where streaming back-pressure brings nothing; the pool keeps the model
resident in each actor exactly as Ray Data's actor-based ``map_batches`` would.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from collections.abc import Iterable, Iterator
from typing import Any, Callable

import ray

from pipelines.errors import ClusterError
from pipelines.ops.base import WorkUnit
from pipelines.ray_runtime import ActorPlan, Placement


#: Longest wait for a result before the pool checks its watchdogs and ticks the driver's heartbeat.
TICK_S = 5.0


#: Seconds of work a call to an actor should carry (units are grouped until their measured time fills it).
CALL_S = 0.05
#: The most units one call carries.
MAX_UNITS_PER_CALL = 64


@dataclass
class _Call:
    units: list[WorkUnit]
    ref: Any


@dataclass
class _Slot:
    index: int
    actor: Any = None
    ref: Any = None                  # the ready() call while starting, else the running call's
    state: str = "starting"          # starting | idle | busy
    call: _Call | None = None        # the call running
    next: _Call | None = None        # the call queued behind it on the same actor
    deadline: float | None = None
    info: dict | None = None


@dataclass
class PoolResult:
    n_done: int = 0                                          # units done (their summaries go to on_done)
    n_attempts: int = 0                                      # unit attempts made, retries included
    n_calls: int = 0                                         # calls sent to actors
    failed: dict[str, str] = field(default_factory=dict)     # unit_id -> last error
    attempts: dict[str, int] = field(default_factory=dict)   # unit_id -> attempts made, for units in flight
    actors: list[dict] = field(default_factory=list)         # every actor started, with why it ended
    events: list[str] = field(default_factory=list)          # replacements and watchdog kills


class _Queue:
    """Retried units first, then the next units of the plan, pulled one at a time."""

    def __init__(self, units: Iterator[WorkUnit]) -> None:
        self.units = units
        self.retries: collections.deque[WorkUnit] = collections.deque()
        self.ahead: collections.deque[WorkUnit] = collections.deque()

    def fill(self, n: int) -> int:
        """Pull up to ``n`` plan units ahead; how many are waiting (retries included)."""
        while len(self.ahead) < n:
            unit = next(self.units, None)
            if unit is None:
                break
            self.ahead.append(unit)
        return len(self.retries) + len(self.ahead)

    def peek(self) -> bool:
        return bool(self.fill(1))

    def popleft(self) -> WorkUnit:
        if self.retries:
            return self.retries.popleft()
        self.fill(1)
        return self.ahead.popleft()

    def append(self, unit: WorkUnit) -> None:
        self.retries.append(unit)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


class ActorPool:
    """Runs ``UnitActor.process_many(units)`` for every unit on ``plan.num_actors`` replaceable actors."""

    def __init__(self, *, actor_cls: type, actor_kwargs: dict, plan: ActorPlan, placement: Placement,
                 on_done: Callable[[WorkUnit, dict], None] | None = None, new_run: bool = False) -> None:
        self.remote_cls = ray.remote(actor_cls).options(num_cpus=plan.cpus, num_gpus=plan.gpus, max_restarts=0,
                                                        max_task_retries=0)
        self.kwargs = actor_kwargs
        self.plan = plan
        self.placement = placement
        self.on_done = on_done
        self.new_run = new_run  # no earlier invocation wrote parts: a first attempt replaces nothing
        self.result = PoolResult()
        self.startup_failures = 0
        self.unit_s: float | None = None  # measured seconds per unit (running mean of the recent ones)

    def _start(self, slot: _Slot) -> None:
        slot.actor = self.remote_cls.remote(**self.kwargs)
        slot.ref = slot.actor.ready.remote()
        slot.state, slot.call, slot.next, slot.info = "starting", None, None, None
        slot.deadline = time.monotonic() + self.placement.startup_timeout_s

    def _group(self) -> int:
        """Units per call: one until a unit's time is known, then enough to fill :data:`CALL_S`."""
        if not self.unit_s:
            return 1
        return max(1, min(MAX_UNITS_PER_CALL, int(CALL_S / self.unit_s)))

    def _send(self, slot: _Slot, queue: "_Queue") -> _Call:
        units = [queue.popleft()]
        while len(units) < self._group() and queue.peek():
            units.append(queue.popleft())
        firsts = []
        for unit in units:
            self.result.attempts[unit.unit_id] = self.result.attempts.get(unit.unit_id, 0) + 1
            firsts.append(self.new_run and self.result.attempts[unit.unit_id] == 1)
        self.result.n_attempts += len(units)
        self.result.n_calls += 1
        return _Call(units, slot.actor.process_many.remote(units, first_attempts=firsts))

    def _deadline(self, call: _Call) -> float | None:
        timeout = self.placement.unit_timeout_s
        return time.monotonic() + timeout * len(call.units) if timeout else None

    def _advance(self, slot: _Slot) -> None:
        """The running call has returned: the queued one (if any) is now running, its clock starts."""
        if slot.next is not None:
            slot.call, slot.next = slot.next, None
            slot.ref, slot.state, slot.deadline = slot.call.ref, "busy", self._deadline(slot.call)
        else:
            slot.state, slot.call, slot.ref, slot.deadline = "idle", None, None, None

    def _replace(self, slot: _Slot, why: str, queue: "_Queue | None" = None) -> None:
        if slot.next is not None:  # never started: back to the queue, not an attempt
            for unit in slot.next.units:
                self.result.attempts[unit.unit_id] -= 1
                self.result.n_attempts -= 1
                if queue is not None:
                    queue.append(unit)
            slot.next = None
        if slot.info is not None:
            slot.info["ended"] = why
        ray.kill(slot.actor, no_restart=True)
        self.result.events.append(f"actor {slot.index} replaced: {why}")
        self._start(slot)

    def _requeue(self, queue: "_Queue", unit: WorkUnit, error: str) -> None:
        tries = self.result.attempts.get(unit.unit_id, 0)
        if tries > self.placement.retries:
            self.result.failed[unit.unit_id] = f"failed after {tries} attempt(s); last: {error}"
            self.result.attempts.pop(unit.unit_id, None)
        else:
            queue.append(unit)

    def run(self, units: Iterable[WorkUnit], *, progress: Callable[[int], None] | None = None,
            tick: Callable[[], None] | None = None) -> PoolResult:
        """Run every unit; ``progress(n_items)`` after each unit, ``tick()`` at least every
        :data:`TICK_S` seconds (the driver's heartbeat). ``units`` is consumed lazily, a call's worth per
        free actor (a generator over a million-unit plan holds only the units in flight and the retries)."""
        queue = _Queue(iter(units))
        waiting = queue.fill(self.plan.num_actors)  # no more actors than units
        if not waiting:
            return self.result
        slots = [_Slot(i) for i in range(min(self.plan.num_actors, waiting))]
        for slot in slots:
            self._start(slot)
        try:
            self._loop(slots, queue, progress, tick or (lambda: None))
        finally:
            for slot in slots:
                if slot.info is not None and "ended" not in slot.info:
                    slot.info["ended"] = "finished"
                ray.kill(slot.actor, no_restart=True)
        return self.result

    def _loop(self, slots: list[_Slot], queue: "_Queue", progress, tick: Callable[[], None]) -> None:
        while True:
            tick()
            for slot in slots:
                if slot.state == "idle" and queue.peek():
                    slot.call = self._send(slot, queue)
                    slot.ref, slot.state, slot.deadline = slot.call.ref, "busy", self._deadline(slot.call)
                if slot.state == "busy" and slot.next is None and queue.peek():
                    slot.next = self._send(slot, queue)
            active = [s for s in slots if s.state in ("starting", "busy")]
            if not active:
                return
            deadlines = [s.deadline for s in active if s.deadline is not None]
            wait = min(TICK_S, max(0.0, min(deadlines) - time.monotonic())) if deadlines else TICK_S
            ready, _ = ray.wait([s.ref for s in active], num_returns=1, timeout=wait)
            by_ref = {s.ref: s for s in active}
            for ref in ready:
                self._settle(by_ref[ref], queue, progress)
            now = time.monotonic()
            for slot in active:
                if slot.ref in ready or slot.deadline is None or now < slot.deadline:
                    continue
                if slot.state == "starting":
                    raise ClusterError(
                        f"an actor did not start within {self.placement.startup_timeout_s:g} s ({self.plan}); "
                        "the cluster may lack the free resources (other jobs?) - check `ray status`, lower "
                        "--actors / --cpus-per-actor, or raise --startup-timeout"
                    )
                call = slot.call
                names = ", ".join(u.unit_id for u in call.units)
                self._replace(slot, f"unit {names} ran past the {self.placement.unit_timeout_s:g} s watchdog", queue)
                for unit in call.units:
                    self._requeue(queue, unit, f"watchdog: no result within {self.placement.unit_timeout_s:g} s")

    def _settle(self, slot: _Slot, queue: "_Queue", progress) -> None:
        if slot.state == "starting":
            try:
                slot.info = ray.get(slot.ref)
            except ray.exceptions.RayActorError as exc:
                lines = (getattr(exc, "error_msg", "") or str(exc)).strip().splitlines() or [repr(exc)]
                self.startup_failures += 1
                if getattr(exc, "actor_init_failed", False) or self.startup_failures > self.placement.retries:
                    raise ClusterError(f"an actor failed to start ({self.plan}): {lines[-1].strip()}") from None
                self._replace(slot, f"died while starting ({lines[0].strip()})")
                return
            slot.info["slot"] = slot.index
            self.result.actors.append(slot.info)
            slot.state, slot.deadline, slot.ref = "idle", None, None
            return
        call = slot.call
        try:
            results = ray.get(slot.ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            names = ", ".join(u.unit_id for u in call.units)
            self._replace(slot, f"died running unit {names} ({_describe(exc)})", queue)
            for unit in call.units:
                self._requeue(queue, unit, _describe(exc))
            return
        except ray.exceptions.RayTaskError as exc:  # the call raised as a whole
            self._advance(slot)
            cause = getattr(exc, "cause", None) or exc
            for unit in call.units:
                self._requeue(queue, unit, _describe(cause))
            return
        self._advance(slot)
        for unit, summary in zip(call.units, results):
            if "error" in summary:  # the unit raised as a whole (e.g. the store failed)
                self._requeue(queue, unit, summary["error"])
                continue
            self.result.n_done += 1
            self.result.attempts.pop(unit.unit_id, None)
            seconds = float(summary.get("seconds", 0.0))
            self.unit_s = seconds if self.unit_s is None else 0.8 * self.unit_s + 0.2 * seconds
            if self.on_done is not None:
                self.on_done(unit, summary)
            if progress is not None:
                progress(unit.size)
