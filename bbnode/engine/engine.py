"""`Engine`: the poll cycle (SPEC §3.3) over the state in `EngineCore`.

`poll(events)` runs one cycle on the ingress events drained by the `Node`:

0. drop executions finished in an earlier cycle (their slots, state, inbound context);
1. apply ingress events in order (`_inbound.py`: policy check first for envelopes);
2. drain the frontier (FIFO of ready invocations) within `cycle_op_budget`;
3. route queued bus events to subscribers (new executions);
4. fire matured timers (`after`, `interval`, held-envelope releases);
5. expire deadlines (Async suspensions -> `OpFailed(timeout)`; requests -> `WireTimeout`, a
   failure of the target, and the reply op run with ``error="timeout"``; lapsed bans), then
   apply queued completions (resume ops go on the frontier; failures -> `OpFailed`);
6. drain the frontier again (same budget);
7. fire queued lifecycle phases (`LifecycleFired`, and ``on_lifecycle`` invocations, which
   run in the next cycle's phase 2);
8. emit outbound and summary steps (`_outbound.py`).

An op that raises, or returns something other than `Immediate`/`Async`, is reported as
`OpFailed` and the cycle carries on; its sends and emits made before the failure stand.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from bbnode.engine._context import OpContext
from bbnode.engine._core import Installed
from bbnode.engine._inbound import InboundMixin
from bbnode.engine._state import PendingAsync
from bbnode.engine.component import (
    LIFECYCLE_OP,
    Async,
    Component,
    Immediate,
    op_suffixes,
    site_id,
    validate_component,
)
from bbnode.engine.errors import DuplicateComponent, InstallError
from bbnode.engine.ingress import IngressEvent, QueuedEnvelope
from bbnode.engine.steps import (
    AsyncSuspended,
    EngineStep,
    LifecycleFired,
    OpCompleted,
    OpFailed,
    OpFailure,
    WireTimeout,
)
from bbnode.ids import PeerId

__all__ = ["Engine"]

_AFTER: Final = "after"
_INTERVAL: Final = "interval"
_RELEASE: Final = "release"


class Engine(InboundMixin):
    """The sans-IO engine: install components, then `poll(events) -> steps` repeatedly."""

    # -- components ----------------------------------------------------------------------------
    def install(self, component: Component, run_hook: bool = True) -> int:
        """Register `component` (routes for every op) and run its `on_install` hook."""
        self.deadline_known = False  # `on_install` may arm a timer or send a request
        problem = validate_component(component)
        if problem is not None:
            raise InstallError(problem)
        name = component.name
        ref = component.component_ref
        if name in self.by_name:
            raise DuplicateComponent(f"a component named {name!r} is already installed")
        if ref in self.by_ref:
            other = self.by_ref[ref].name
            raise DuplicateComponent(f"{name!r}: ref {ref:#010x} is already used by {other!r}")
        sites = {op: site_id(ref, op) for op in component.OPS}
        if len(set(sites.values())) != len(sites):
            raise InstallError(f"{name!r}: two ops hash to the same NodeSiteId; rename one")
        installed = Installed(component, ref, sites)
        self.by_name[name] = installed
        self.by_ref[ref] = installed
        for op, site in sites.items():
            self.site_ops[site] = (installed, op)
            for suffix in op_suffixes(ref, op):
                self.routes[suffix] = site
        if run_hook:
            try:
                component.on_install(OpContext(self, component, "", 0, 0))
            except Exception as exc:
                raise InstallError(f"{name!r}: on_install raised {exc!r}") from exc
        return ref

    # -- the cycle -----------------------------------------------------------------------------
    def poll(self, events: list[IngressEvent | QueuedEnvelope]) -> list[EngineStep]:
        """Run one cycle over `events` (already drained from ingress); see module docstring."""
        self.deadline_known = False  # see `next_deadline_ns`
        # Each phase is entered only when it has work: a poll runs per host turn, and most
        # phases have none (a call that finds nothing costs more than the check).
        if self.finished:
            self._drop_finished()
        if events:
            self.handle_ingress(events)
        if self.frontier:
            self._drain_frontier()
        if self.bus_queue:
            self._route_bus()
        now = self.now_ns
        if self.scheduler.due(now):
            self._fire_timers()
        if self.pending_async:
            self._expire_suspensions(now)
        if self.requests.due(now):
            self._expire_requests(now)
        if self.governor.bans_due(now):
            self.governor.expire_blocks(now)
        if self.pending_completions:
            self._apply_completions()
        if self.frontier:
            self._drain_frontier()
        if self.fired_phases:
            self._fire_lifecycle()
        return self.emit_outputs()

    def _drop_finished(self) -> None:
        execs = self.execs
        for exec_id in self.finished:
            execs.pop(exec_id, None)
        self.finished.clear()

    def _drain_frontier(self) -> None:
        frontier = self.frontier
        slots = self.slots
        budget = self.config.cycle_op_budget
        dispatch = self._dispatch
        while frontier:
            if self.ops_invoked >= budget:
                self.budget_exceeded = True
                return
            key = frontier.popleft()
            self.ops_invoked += 1
            dispatch(key[0], key[1], slots.pop(key))

    def _dispatch(self, site: int, exec_id: int, inputs: dict[str, Any]) -> None:
        installed, op = self.site_ops[site]
        component = installed.component
        ctx = self.contexts.get(site)
        if ctx is None:
            ctx = self.contexts[site] = OpContext(self, component, op, site, exec_id)
        else:
            ctx._exec_id = exec_id
        try:
            result = component.dispatch(op, inputs, ctx)
        except Exception as exc:
            self.op_failed(site, exec_id, "raised", f"{type(exc).__name__}: {exc}")
            return
        cls = result.__class__
        if cls is Immediate:
            outputs = result.outputs  # type: ignore[union-attr]
            state = self.execs.get(exec_id)  # None if its record is gone (finish_exec allows it)
            if outputs is not None:
                if outputs.__class__ is not dict and not isinstance(outputs, dict):
                    detail = (
                        f"Immediate.outputs must be a dict or None, got {type(outputs).__name__}"
                    )
                    self.op_failed(site, exec_id, "invalid_output", detail)
                    return
                if outputs and state is not None:
                    state.outputs_written += len(outputs)
            self.steps.append(OpCompleted(site, exec_id, outputs))
            # finish_exec, inlined: this runs once per op
            if state is not None and not state.finished:
                state.finished = True
                self.finished.append(exec_id)
        elif cls is Async:
            self._suspend(installed, site, exec_id, result)  # type: ignore[arg-type]
        else:
            detail = f"dispatch returned {cls.__name__}, not Immediate or Async"
            self.op_failed(site, exec_id, "invalid_output", detail)

    def _suspend(self, installed: Installed, site: int, exec_id: int, result: Async) -> None:
        cmd = result.cmd_id
        problem = None
        if isinstance(cmd, bool) or not isinstance(cmd, int) or not 1 <= cmd < self.next_command_id:
            problem = f"Async.cmd_id {cmd!r} was not allocated with ctx.allocate_command()"
        elif cmd in self.pending_async:
            problem = f"Async.cmd_id {cmd} is already awaited by another op"
        elif result.resume not in installed.sites:
            problem = f"Async.resume {result.resume!r} is not an op of {installed.name!r}"
        elif result.deadline_ns is not None and (
            isinstance(result.deadline_ns, bool) or not isinstance(result.deadline_ns, int)
        ):
            problem = f"Async.deadline_ns must be an int or None, got {result.deadline_ns!r}"
        if problem is not None:
            self.op_failed(site, exec_id, "invalid_output", problem)
            return
        resume_site = installed.sites[result.resume]
        self.pending_async[cmd] = PendingAsync(site, exec_id, resume_site, result.deadline_ns)
        self.steps.append(AsyncSuspended(site, exec_id, cmd, result.deadline_ns))

    def op_failed(self, site: int, exec_id: int, kind: str, detail: str) -> None:
        """Emit `OpFailed` and finish the execution."""
        self.steps.append(OpFailed(site, exec_id, OpFailure(kind, detail)))
        self.finish_exec(exec_id)

    def _route_bus(self) -> None:
        queue = self.bus_queue
        self.bus_queue = []
        for topic, module, data in queue:
            for site in list(self.subscriptions.get(topic, ())):
                inputs = {"topic": topic, "value": msgpack.unpackb(data), "module": module}
                self.start_exec(site, inputs, 0, None)

    def _fire_timers(self) -> None:
        scheduler = self.scheduler
        now = self.now_ns
        for handle, at_ns, payload in scheduler.pop_due(now):
            kind = payload[0]
            if kind == _AFTER:
                _, site, inputs, parent = payload
                self.start_exec(site, inputs, parent, None)
            elif kind == _INTERVAL:
                _, site, period, timer_id = payload
                next_at = at_ns + period
                if next_at <= now:
                    next_at = now + period  # missed periods are skipped, not replayed
                self.intervals[timer_id] = scheduler.schedule(next_at, payload)
                self.start_exec(site, {"timer": timer_id, "at_ns": at_ns}, 0, None)
            elif kind == _RELEASE:
                peer = payload[1]
                held = self.held.get(peer)
                if held is not None and held.timer == handle:
                    self.release_held(peer)

    def _expire_suspensions(self, now: int) -> None:
        expired = [
            cmd
            for cmd, pending in self.pending_async.items()
            if pending.deadline_ns is not None and pending.deadline_ns <= now
        ]
        for cmd in expired:
            pending = self.pending_async.pop(cmd)
            detail = f"command {cmd} passed its deadline {pending.deadline_ns}"
            self.op_failed(pending.op_ref, pending.exec_id, "timeout", detail)

    def _expire_requests(self, now: int) -> None:
        for request in self.requests.expire(now):
            parked = request.parked_op
            parked_site = None if parked is None else parked[0]  # type: ignore[index]
            self.steps.append(
                WireTimeout(
                    request.wire_req_id, request.target_peer, request.started_at_ns, parked_site
                )
            )
            self.counters.incr("requests_timed_out")
            if not self._drop_held_request(request.target_peer, request.wire_req_id):
                self.record_failure(request.target_peer)
            self.request_error(request, "timeout")

    def _drop_held_request(self, peer: PeerId, wire_req_id: int) -> bool:
        """Drop the request `wire_req_id` from `peer`'s held envelopes; True if it was there.

        A request that timed out while held in `peer`'s cooldown never left this node, so
        `peer` did not fail it: counting it as a failure would push the cooldown on again,
        and a component that keeps sending requests (the heartbeat) would then hold every
        one of them for good. Nor is it sent once the cooldown ends: its caller has had its
        timeout.
        """
        held = self.held.get(peer)
        return held is not None and held.drop_request(wire_req_id)

    def _apply_completions(self) -> None:
        completions = self.pending_completions
        self.pending_completions = []
        for completion in completions:
            waiting = self.pending_async.pop(completion.cmd_id, None)
            if waiting is None:
                self.counters.incr("completions_unmatched")
            elif completion.failure is not None:
                self.op_failed(
                    waiting.op_ref, waiting.exec_id, "command_failed", completion.failure
                )
            else:
                key = (waiting.resume_site, waiting.exec_id)
                self.slots[key] = completion.results or {}
                self.frontier.append(key)

    def _fire_lifecycle(self) -> None:
        phases = self.fired_phases
        self.fired_phases = []
        for phase in phases:
            self.steps.append(LifecycleFired(phase))
            for installed in self.by_name.values():
                site = installed.sites.get(LIFECYCLE_OP)
                if site is not None:
                    self.start_exec(site, {"phase": phase}, 0, None)

    # -- host queries --------------------------------------------------------------------------
    def next_deadline_ns(self) -> int | None:
        """Earliest engine time at which a timer, request or suspension matures (or None)."""
        # Asked several times per host turn (and by `has_work`), while only a poll or an
        # install (`on_install`) can change the answer: it is worked out once after each.
        if self.deadline_known:
            return self.deadline_memo
        best = self.scheduler.next_deadline_ns()
        request = self.requests.next_deadline_ns()
        if request is not None and (best is None or request < best):
            best = request
        for pending in self.pending_async.values():
            deadline = pending.deadline_ns
            if deadline is not None and (best is None or deadline < best):
                best = deadline
        self.deadline_memo = best
        self.deadline_known = True
        return best

    def has_work(self) -> bool:
        """True when a `poll()` would do something without new input or a clock change."""
        if (
            self.frontier
            or self.bus_queue
            or self.fired_phases
            or self.pending_completions
            or self.pending_outbound
        ):
            return True
        deadline = self.next_deadline_ns()
        return deadline is not None and deadline <= self.now_ns
