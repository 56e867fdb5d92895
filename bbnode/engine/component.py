"""Components (the upstream *Protocol* role) and the ids that address their ops.

A component is a Python class with a unique `TYPE_NAME`, the tuple of `OPS` it serves, state
it `serialize()`s to msgpack-able data and `restore(state)`s from, and one entry point
`dispatch(op, inputs, ctx)` returning `Immediate(outputs)` or `Async(cmd_id, resume, ...)`.

Ids (stable across nodes, whatever the install order, so peers can address each other):

- `ComponentRef` (u32) = 32-bit FNV-1a of the component's `name` (UTF-8), unless given.
- `NodeSiteId` (u64) of an op = ``(ref << 32) | fnv1a_32(op)``. It is the `op_ref` in steps.
- An inbound fill reaches an op through its `dest_suffix`, the binary multiaddr of either
  ``/component/<ref>/op/<name>`` or ``/site/<NodeSiteId>`` (`op_suffixes` gives both).

Optional hooks (all have no-op defaults):

- `on_install(ctx)` runs once when the component is installed on a fresh node (not on
  restore: timers and subscriptions are part of the snapshot). Use it for `ctx.interval`,
  `ctx.subscribe`, initial sends. It runs outside any execution: `ctx.reply` is unavailable.
- an op named ``on_lifecycle`` in `OPS` is invoked with ``{"phase": <name>}`` whenever the
  host fires a lifecycle phase (`Node.fire_lifecycle`, e.g. ``"PreShutdown"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from bbnode.engine._fastinit import fast_frozen_init
from bbnode.ids import Address, fnv1a_32

if TYPE_CHECKING:
    from bbnode.engine._context import OpContext

__all__ = [
    "LIFECYCLE_OP",
    "Async",
    "Component",
    "Immediate",
    "component_ref",
    "op_suffixes",
    "site_id",
]

#: The op a component declares to receive lifecycle phases.
LIFECYCLE_OP: Final = "on_lifecycle"

_U32: Final = (1 << 32) - 1


def component_ref(name: str) -> int:
    """The default `ComponentRef` of a component name: 32-bit FNV-1a of its UTF-8 bytes."""
    return fnv1a_32(name.encode("utf-8"))


def site_id(ref: int, op: str) -> int:
    """The `NodeSiteId` of `op` on the component installed as `ref`."""
    return (ref << 32) | fnv1a_32(op.encode("utf-8"))


def op_suffixes(ref: int, op: str) -> tuple[bytes, bytes]:
    """Both `dest_suffix` forms that route to `op`: ``/component/<ref>/op/<op>``, ``/site/<id>``."""
    by_name = Address([("component", ref), ("op", op)]).to_bytes()
    by_site = Address([("site", site_id(ref, op))]).to_bytes()
    return by_name, by_site


@dataclass(frozen=True, slots=True)
class Immediate:
    """The op finished now; `outputs` (msgpack-able dict or None) goes into `OpCompleted`."""

    outputs: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Async:
    """The op waits for command `cmd_id` (from `ctx.allocate_command()`).

    When the command completes (`Node.complete` / `ctx.complete_command`) op `resume` of the
    same component runs with the results as inputs, in the same execution. Past
    `deadline_ns` (engine clock) the suspension fails with `OpFailed(kind="timeout")`.
    """

    cmd_id: int
    resume: str
    deadline_ns: int | None = None


fast_frozen_init(Immediate)  # returned by every op: see `_fastinit`
fast_frozen_init(Async)


class Component:
    """Base class of engine components; subclass and set `TYPE_NAME` and `OPS`.

    `name` defaults to `TYPE_NAME` (install two instances under different names to run two);
    `ref` defaults to `component_ref(name)`.
    """

    TYPE_NAME: ClassVar[str] = ""
    OPS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str | None = None, ref: int | None = None) -> None:
        self.name: str = name if name is not None else self.TYPE_NAME
        self.ref: int | None = ref

    @property
    def component_ref(self) -> int:
        """The `ComponentRef` this component is (or will be) installed under."""
        return self.ref if self.ref is not None else component_ref(self.name)

    def serialize(self) -> Any:
        """Component state as msgpack-able data (default: stateless, None)."""
        return None

    def restore(self, state: Any) -> None:
        """Load state produced by `serialize()` (default: ignore)."""

    def on_install(self, ctx: OpContext) -> None:
        """Hook run once when installed on a fresh node (default: nothing)."""

    def dispatch(self, op: str, inputs: dict[str, Any], ctx: OpContext) -> Immediate | Async:
        """Run `op` with `inputs`; subclasses must override."""
        raise NotImplementedError(f"{type(self).__name__}.dispatch")


def validate_component(component: Component) -> str | None:
    """Why `component` cannot be installed, or None if it can."""
    if not isinstance(component, Component):
        return f"{component!r} is not a Component"
    if not isinstance(component.TYPE_NAME, str) or not component.TYPE_NAME:
        return f"{type(component).__name__}.TYPE_NAME must be a non-empty str"
    if not isinstance(component.name, str) or not component.name:
        return f"{type(component).__name__}: name must be a non-empty str"
    ops = component.OPS
    if not isinstance(ops, tuple) or not ops or not all(isinstance(o, str) and o for o in ops):
        return f"{component.name}: OPS must be a non-empty tuple of non-empty str"
    if len(set(ops)) != len(ops):
        return f"{component.name}: OPS has duplicates"
    ref = component.component_ref
    if not isinstance(ref, int) or not 0 <= ref <= _U32:
        return f"{component.name}: ref {ref!r} is not a u32"
    return None
