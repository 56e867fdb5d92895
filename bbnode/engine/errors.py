"""The engine's error hierarchy: caller mistakes (local) versus peer garbage (remote).

Modelled on h11's `LocalProtocolError` / `RemoteProtocolError` split:

- `DeliveryError` and its subclasses are raised by `Node` entry points when the *host* hands
  the engine something invalid (an unknown module, an oversized payload, a full ingress
  queue). Nothing is queued when one is raised, so the host may fix the input and retry.
- `InstallError` is raised when a component cannot be installed (bad class, duplicate name).
- `OpError` is raised by `OpContext` syscalls when a *component* misuses them (e.g. `reply()`
  outside a request); the engine turns it (like any exception from an op) into `OpFailed`.
- `SnapshotError` covers snapshot bytes that cannot be decoded (`SnapshotDecodeError`), a
  snapshot from another schema version (`SpecVersionMismatch`) and a snapshot that does not
  fit the node it is restored into (`RestoreError`).

Garbage from remote peers never raises out of the engine: it becomes `WireDecodeFailed` /
`WireReceiveFailed` steps.
"""

from __future__ import annotations

__all__ = [
    "DeliveryError",
    "DuplicateComponent",
    "EngineError",
    "InflightBudgetExceeded",
    "IngressFull",
    "InstallError",
    "InvalidConfig",
    "InvalidInput",
    "OpError",
    "PayloadTooLarge",
    "RestoreError",
    "SnapshotDecodeError",
    "SnapshotError",
    "SpecVersionMismatch",
    "UnknownCommand",
    "UnknownComponent",
    "UnknownOp",
]


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


# -- host misuse (local) -------------------------------------------------------------------------
class DeliveryError(EngineError):
    """The host passed invalid input to a `Node` entry point; nothing was queued."""


class UnknownComponent(DeliveryError):
    """`invoke`/`deliver_event` named a module that is not installed."""

    def __init__(self, module: str) -> None:
        super().__init__(f"no component named {module!r} is installed")
        self.module = module


class UnknownOp(DeliveryError):
    """`invoke`/`deliver_event` named an op the component does not declare in `OPS`."""

    def __init__(self, module: str, op: str) -> None:
        super().__init__(f"component {module!r} has no op {op!r}")
        self.module = module
        self.op = op


class UnknownCommand(DeliveryError):
    """`complete`/`fail` named a command id that was never allocated."""

    def __init__(self, cmd_id: int) -> None:
        super().__init__(f"command id {cmd_id} was never allocated by this node")
        self.cmd_id = cmd_id


class InvalidInput(DeliveryError):
    """An argument has the wrong type or value (message names the argument)."""


class PayloadTooLarge(DeliveryError):
    """One item exceeds its per-item size cap."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what}: {size} bytes exceeds the limit of {limit} bytes")
        self.what = what
        self.size = size
        self.limit = limit


class IngressFull(DeliveryError):
    """The bounded ingress queue holds `capacity` events already; poll before pushing more."""

    def __init__(self, capacity: int) -> None:
        super().__init__(f"ingress queue is full ({capacity} events); poll the node first")
        self.capacity = capacity


class InflightBudgetExceeded(DeliveryError):
    """Accepting the item would exceed the cumulative in-flight byte budget."""

    def __init__(self, size: int, inflight: int, limit: int) -> None:
        super().__init__(
            f"{size} more bytes would exceed the in-flight budget "
            f"({inflight} of {limit} bytes queued); poll the node first"
        )
        self.size = size
        self.inflight = inflight
        self.limit = limit


# -- component installation ----------------------------------------------------------------------
class InstallError(EngineError):
    """A component cannot be installed (bad declaration, clashing name/ref/site)."""


class DuplicateComponent(InstallError):
    """A component with this name or ref is already installed."""


# -- component misuse of syscalls ----------------------------------------------------------------
class OpError(EngineError):
    """A component misused an `OpContext` syscall; reported as `OpFailed(kind="raised")`."""


# -- snapshots -----------------------------------------------------------------------------------
class SnapshotError(EngineError):
    """Base of snapshot decode/restore errors."""


class SnapshotDecodeError(SnapshotError):
    """The snapshot bytes are not a well-formed NodeSnapshot; the message names the field."""


class SpecVersionMismatch(SnapshotError):
    """The snapshot was written by a schema version this build cannot restore."""

    def __init__(self, got: int, expected: int) -> None:
        super().__init__(f"snapshot spec_version {got} is not supported (expected {expected})")
        self.got = got
        self.expected = expected


class RestoreError(SnapshotError):
    """The snapshot does not fit this node (other PeerId, missing component, ...)."""


# -- configuration -------------------------------------------------------------------------------
class InvalidConfig(EngineError, ValueError):
    """A `NodeConfig` field is out of range or of the wrong type (message names the field)."""
