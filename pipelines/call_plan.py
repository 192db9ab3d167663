"""Which units travel together in one actor call, and the part a call writes: fixed per run, so that every
attempt of a unit, in any invocation, lands under the same part name (exactly once, without coordination).

Units that take milliseconds (a header probe: ~3 ms per 64 images) would spend most of their time writing
one small part each (~2 ms: conform, encode, fsync). So after a probe the pool sends such units in *calls*
of ``size`` consecutive plan positions, and the actor writes one part per call and table
(``call-<hash of the unit ids>``, its footer listing the units: :mod:`analysis.storage.run_parts`).

The grouping is a function of the plan position alone, recorded in the run's manifest before the first
call of several units is sent:

* positions below ``probe`` run one unit per call, as unit parts (their times are the measurement);
* from ``probe`` on, position ``p`` belongs to call ``(p - probe) // size``; ``size`` is measured once
  (:func:`units_per_call`) and never changes for the run.

So a call retried after a dead actor, a watchdog kill, or a killed driver whose actors still finish their
calls while ``--resume`` runs, writes the same part name again and replaces it: no unit lands twice. A call
part is written whole or not at all, so a call is done for all its units or for none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from analysis.storage.run_parts import CALL_PREFIX

#: Seconds of work one call of several units should carry.
CALL_S = 0.25
#: The most units one call carries.
MAX_UNITS_PER_CALL = 64
#: The fewest single-unit calls before the grouping is measured (at least two per actor, so that every
#: actor is busy from the start while the first results come in).
MIN_PROBE = 8


@dataclass(frozen=True)
class CallPlan:
    """``probe``: plan positions below it run alone; ``size``: units per call from there (None: not
    measured yet, nothing past ``probe`` has been sent)."""

    probe: int
    size: int | None = None

    def key(self, position: int) -> int | None:
        """The call a plan position belongs to (None: a probe position, alone in its call)."""
        if position < self.probe or self.size is None:
            return None
        return (position - self.probe) // self.size

    def to_json(self) -> dict:
        return {"probe": self.probe, "size": self.size}

    @classmethod
    def resumed(cls, recorded: dict | None, *, actors: int) -> "CallPlan":
        """The plan a run keeps: the recorded one once its size was measured; before that (nothing past the
        recorded probe was ever sent) a probe at least as long as the recorded one."""
        fresh = probe_length(actors)
        if not recorded:
            return cls(fresh)
        if recorded.get("size"):
            return cls(int(recorded["probe"]), int(recorded["size"]))
        return cls(max(int(recorded.get("probe") or 0), fresh))


def probe_length(actors: int) -> int:
    """Single-unit calls a fresh probe makes: :data:`MIN_PROBE`, or two per actor when more."""
    return max(MIN_PROBE, 2 * max(1, actors))


def units_per_call(unit_s: float | None) -> int:
    """Units per call for units of ``unit_s`` seconds: :data:`CALL_S` worth, 1 to :data:`MAX_UNITS_PER_CALL`
    (1 when nothing was measured: every probe unit failed)."""
    if not unit_s or unit_s <= 0:
        return 1
    return max(1, min(MAX_UNITS_PER_CALL, int(CALL_S / unit_s)))


def call_part(unit_ids: Sequence[str]) -> str:
    """The part a call writes: the unit's own name for one unit, else ``call-`` + 16 hex digits of the
    sha256 of the unit ids in order."""
    if len(unit_ids) == 1:
        return unit_ids[0]
    blob = "\0".join(unit_ids).encode("utf-8", "surrogateescape")
    return CALL_PREFIX + hashlib.sha256(blob).hexdigest()[:16]
