"""Components used by the engine tests (echo, and a many-behaviour worker)."""

from __future__ import annotations

from typing import Any

from bbnode.engine import Async, Component, Immediate, OpContext


class Echo(Component):
    """`request`/`notify` send to a peer's echo; `ping` answers; `reply` reports the answer."""

    TYPE_NAME = "echo"
    OPS = ("ping", "request", "notify", "reply")

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: OpContext) -> Immediate | Async:
        if op == "request":
            deadline = inputs.get("deadline_ns")
            ctx.send(inputs["to"], "echo", "ping", inputs["value"], True, deadline, "reply")
        elif op == "notify":
            ctx.send(inputs["to"], "echo", "ping", inputs["value"])
        elif op == "ping":
            ctx.emit("got", inputs["payload"])
            if ctx.wire_req_id:
                ctx.reply(inputs["payload"])
        elif op == "reply":
            ctx.emit("reply", [inputs["payload"], inputs["error"]])
        return Immediate()


class Worker(Component):
    """Op `act` does what `inputs["do"]` says; used by the snapshot-equivalence property test."""

    TYPE_NAME = "worker"
    OPS = ("act", "recv", "on_reply", "resume", "tick", "on_bus", "on_lifecycle")

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.count = 0
        self.timers: list[int] = []
        self.cmds: list[int] = []

    def serialize(self) -> Any:
        return [self.count, self.timers, self.cmds]

    def restore(self, state: Any) -> None:
        self.count, self.timers, self.cmds = state

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: OpContext) -> Immediate | Async:
        self.count += 1
        if op == "act":
            return self._act(inputs, ctx)
        if op == "recv":
            ctx.emit("recv", [inputs["payload"], inputs["peer_id"].to_bytes()])
            if ctx.wire_req_id:
                ctx.reply(inputs["payload"])
        elif op == "on_reply":
            ctx.emit(
                "reply", [inputs["payload"], inputs["error"], inputs["correlation"].wire_req_id]
            )
        elif op == "resume":
            ctx.emit("resumed", inputs)
        elif op == "tick":
            ctx.emit("tick", [inputs["at_ns"], self.count])
        elif op == "on_bus":
            ctx.emit("bus_seen", inputs["value"])
        elif op == "on_lifecycle":
            ctx.emit("phase", inputs["phase"])
        return Immediate({"count": self.count})

    def _act(self, inputs: dict[str, Any], ctx: OpContext) -> Immediate | Async:
        do = inputs["do"]
        value = inputs.get("value")
        peer: Any = inputs.get("peer")
        if do == "send":
            ctx.send(peer, "worker", "recv", value)
        elif do == "request":
            ttl = inputs.get("ttl")
            deadline = None if ttl is None else ctx.now_ns + ttl
            ctx.send(peer, "worker", "recv", value, True, deadline, "on_reply")
        elif do == "emit":
            ctx.emit("t", value)
        elif do == "after":
            self.timers.append(ctx.after(inputs["delay"], "act", {"do": "emit", "value": value}))
        elif do == "interval":
            self.timers.append(ctx.interval(inputs["delay"] + 1, "tick"))
        elif do == "cancel":
            if self.timers:
                ctx.cancel(self.timers.pop(0))
        elif do == "suspend":
            cmd = ctx.allocate_command()
            self.cmds.append(cmd)
            ttl = inputs.get("ttl")
            return Async(cmd, "resume", None if ttl is None else ctx.now_ns + ttl)
        elif do == "self_complete":
            cmd = ctx.allocate_command()
            ctx.complete_command(cmd, {"self": value})
            return Async(cmd, "resume")
        elif do == "call":
            ctx.call("act", {"do": "emit", "value": value})
        elif do == "raise":
            raise ValueError(f"asked to fail with {value!r}")
        elif do == "rng":
            ctx.emit("rng", ctx.rng.getrandbits(32))
        elif do == "seen":
            ctx.emit("seen", ctx.seen(repr(value).encode()))
        elif do == "subscribe":
            ctx.subscribe("t", "on_bus")
        elif do == "unsubscribe":
            ctx.unsubscribe("t", "on_bus")
        elif do == "bad_return":
            return "nonsense"  # type: ignore[return-value]
        return Immediate({"done": do})
