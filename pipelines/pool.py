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
* Units that take milliseconds (a header-only probe: 3.4 ms per 64 images) are sent several to a call and
  land as ONE part per call and table: Ray's ~1.2 ms per call and the store's ~2 ms per part (conform,
  encode, fsync) are paid once per call instead of once per unit. Which units share a call is fixed per
  run by :class:`~pipelines.call_plan.CallPlan` (measured once, after a probe of single-unit calls, and
  recorded before the first such call is sent), so a call is retried whole, under its own part name.

Why an actor pool over units rather than Ray Data ``map_batches``: every unit must land as one
atomically written, deterministically named part per table (resume, no duplicates), and the expensive
probes take minutes per unit, where streaming back-pressure brings nothing; the pool keeps the model
resident in each actor exactly as Ray Data's actor-based ``map_batches`` would.
"""

from __future__ import annotations

import collections
import statistics
import time
from dataclasses import dataclass, field
from collections.abc import Iterable, Iterator
from typing import Any, Callable

import ray

from pipelines.call_plan import CallPlan, call_part, probe_length, units_per_call
from pipelines.errors import ClusterError
from pipelines.ops.base import WorkUnit
from pipelines.ray_runtime import ActorPlan, Placement


#: Longest wait for a result before the pool checks its watchdogs and ticks the driver's heartbeat.
TICK_S = 5.0


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
    failed_parts: dict[str, str] = field(default_factory=dict)  # unit_id -> the part its call writes
    attempts: dict[str, int] = field(default_factory=dict)   # unit_id -> attempts made, for units in flight
    actors: list[dict] = field(default_factory=list)         # every actor started, with why it ended
    events: list[str] = field(default_factory=list)          # replacements and watchdog kills


class _Queue:
    """Retried calls first, then the plan's next call (its units pulled one at a time from ``units``, a
    stream of ``(plan position, unit)``, grouped by ``plan``)."""

    def __init__(self, units: Iterator[tuple[int, WorkUnit]], plan: CallPlan) -> None:
        self.units = units
        self.plan = plan
        self.retries: collections.deque[list[WorkUnit]] = collections.deque()
        self.ahead: collections.deque[tuple[int, WorkUnit]] = collections.deque()

    def fill(self, n: int) -> int:
        """Pull up to ``n`` plan units ahead; how many units are waiting (retried calls' included)."""
        while len(self.ahead) < n:
            entry = next(self.units, None)
            if entry is None:
                break
            self.ahead.append(entry)
        return sum(map(len, self.retries)) + len(self.ahead)

    def waiting(self) -> bool:
        """Whether any unit is left to send."""
        return bool(self.fill(1))

    def blocked(self) -> bool:
        """The next plan unit lies past the probe and the grouping is not measured yet."""
        return not self.retries and bool(self.fill(1)) and self.ahead[0][0] >= self.plan.probe and self.plan.size is None

    def ready(self) -> bool:
        """Whether :meth:`pop` returns a call now."""
        return self.waiting() and not self.blocked()

    def pop(self) -> list[WorkUnit]:
        """The next call's units (see :meth:`ready`)."""
        if self.retries:
            return self.retries.popleft()
        self.fill(1)
        position, unit = self.ahead.popleft()
        units, key = [unit], self.plan.key(position)
        while key is not None and self.fill(1) and self.plan.key(self.ahead[0][0]) == key:
            units.append(self.ahead.popleft()[1])
        return units

    def append(self, units: list[WorkUnit]) -> None:
        """A call to send again, whole (its part name must not change)."""
        self.retries.append(units)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


class ActorPool:
    """Runs ``UnitActor.process_many(units)`` for every unit on ``plan.num_actors`` replaceable actors."""

    def __init__(self, *, actor_cls: type, actor_kwargs: dict, plan: ActorPlan, placement: Placement,
                 on_done: Callable[[WorkUnit, dict], None] | None = None, new_run: bool = False,
                 calls: CallPlan | None = None, on_calls: Callable[[CallPlan], None] | None = None) -> None:
        self.remote_cls = ray.remote(actor_cls).options(num_cpus=plan.cpus, num_gpus=plan.gpus, max_restarts=0,
                                                        max_task_retries=0)
        self.kwargs = actor_kwargs
        self.plan = plan
        self.placement = placement
        self.on_done = on_done
        self.new_run = new_run  # no earlier invocation wrote parts: a first attempt replaces nothing
        self.result = PoolResult()
        self.startup_failures = 0
        self.calls = calls or CallPlan.resumed(None, actors=plan.num_actors)
        self.on_calls = on_calls  # records the measured grouping (the manifest) before it is used
        self.measured: list[float] = []  # seconds per unit of the units done before the grouping is measured

    def _start(self, slot: _Slot) -> None:
        slot.actor = self.remote_cls.remote(**self.kwargs)
        slot.ref = slot.actor.ready.remote()
        slot.state, slot.call, slot.next, slot.info = "starting", None, None, None
        slot.deadline = time.monotonic() + self.placement.startup_timeout_s

    def _measure(self, queue: "_Queue") -> None:
        """Fix the grouping from the probe's median time per unit."""
        size = units_per_call(statistics.median(self.measured) if self.measured else None)
        self._use(queue, CallPlan(self.calls.probe, size))

    def _probe_from(self, queue: "_Queue", position: int, actors: int) -> None:
        """Nothing measured and nothing running (a resume whose probe was done, or every probe unit failed):
        extend the probe past ``position`` (safe while no size is recorded: nothing past the old probe was
        ever sent)."""
        self._use(queue, CallPlan(max(self.calls.probe, position + probe_length(actors))))

    def _use(self, queue: "_Queue", calls: CallPlan) -> None:
        """Record ``calls`` (the manifest), then group by it."""
        self.calls = calls
        if self.on_calls is not None:
            self.on_calls(calls)
        queue.plan = calls

    def _send(self, slot: _Slot, queue: "_Queue") -> _Call:
        units = queue.pop()
        firsts = []
        for unit in units:
            self.result.attempts[unit.unit_id] = self.result.attempts.get(unit.unit_id, 0) + 1
            firsts.append(self.new_run and self.result.attempts[unit.unit_id] == 1)
        self.result.n_attempts += len(units)
        self.result.n_calls += 1
        return _Call(units, slot.actor.process_many.remote(units, first_attempts=firsts,
                                                           part=call_part([u.unit_id for u in units])))

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
                queue.append(slot.next.units)
            slot.next = None
        if slot.info is not None:
            slot.info["ended"] = why
        ray.kill(slot.actor, no_restart=True)
        self.result.events.append(f"actor {slot.index} replaced: {why}")
        self._start(slot)

    def _requeue(self, queue: "_Queue", units: list[WorkUnit], error: str) -> None:
        """A call that did not land goes back whole, or fails for all its units after its retries."""
        tries = max(self.result.attempts.get(u.unit_id, 0) for u in units)
        if tries <= self.placement.retries:
            queue.append(units)
            return
        part = call_part([u.unit_id for u in units])
        for unit in units:
            self.result.failed[unit.unit_id] = f"failed after {tries} attempt(s); last: {error}"
            self.result.failed_parts[unit.unit_id] = part
            self.result.attempts.pop(unit.unit_id, None)

    def run(self, units: Iterable[tuple[int, WorkUnit]], *, progress: Callable[[int], None] | None = None,
            tick: Callable[[], None] | None = None) -> PoolResult:
        """Run every unit of ``units`` (``(plan position, unit)``); ``progress(n_items)`` after each unit,
        ``tick()`` at least every :data:`TICK_S` seconds (the driver's heartbeat). ``units`` is consumed
        lazily, a call's worth per free actor (a generator over a million-unit plan holds only the units in
        flight and the retries)."""
        queue = _Queue(iter(units), self.calls)
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
            if queue.blocked() and self.measured:
                self._measure(queue)
            elif queue.blocked() and not any(s.state == "busy" for s in slots):
                self._probe_from(queue, queue.ahead[0][0], len(slots))
            for slot in slots:
                if slot.state == "idle" and queue.ready():
                    slot.call = self._send(slot, queue)
                    slot.ref, slot.state, slot.deadline = slot.call.ref, "busy", self._deadline(slot.call)
                if slot.state == "busy" and slot.next is None and queue.ready():
                    slot.next = self._send(slot, queue)
            active = [s for s in slots if s.state in ("starting", "busy")]
            if not active:
                if queue.waiting():  # every actor idle before the grouping was measured: probe again
                    continue
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
                self._requeue(queue, call.units, f"watchdog: no result within {self.placement.unit_timeout_s:g} s")

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
            self._requeue(queue, call.units, _describe(exc))
            return
        except ray.exceptions.RayTaskError as exc:  # the call raised as a whole
            self._advance(slot)
            cause = getattr(exc, "cause", None) or exc
            self._requeue(queue, call.units, _describe(cause))
            return
        self._advance(slot)
        for unit, summary in zip(call.units, results):
            if "error" in summary:  # a call of one unit: the unit raised as a whole (e.g. the store failed)
                self._requeue(queue, [unit], summary["error"])
                continue
            self.result.n_done += 1
            self.result.attempts.pop(unit.unit_id, None)
            if self.calls.size is None:
                self.measured.append(float(summary.get("seconds", 0.0)))
            if self.on_done is not None:
                self.on_done(unit, summary)
            if progress is not None:
                progress(unit.size)
