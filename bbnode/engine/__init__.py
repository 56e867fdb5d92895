"""The sans-IO bbnode engine: events in, steps out (SPEC §3).

`Node` is the host surface; components subclass `Component` and return `Immediate` or
`Async` from `dispatch`. Nothing in this package reads a clock, touches a socket or logs:
time arrives as `now_ns` arguments (`Node.tick`) and everything observable is an
`EngineStep` returned by `Node.poll()`.
"""

from bbnode.engine import steps
from bbnode.engine._config import NodeConfig
from bbnode.engine._context import OpContext
from bbnode.engine.component import (
    Async,
    Component,
    Immediate,
    component_ref,
    op_suffixes,
    site_id,
)
from bbnode.engine.errors import (
    DeliveryError,
    DuplicateComponent,
    EngineError,
    InflightBudgetExceeded,
    IngressFull,
    InstallError,
    InvalidConfig,
    InvalidInput,
    OpError,
    PayloadTooLarge,
    RestoreError,
    SnapshotDecodeError,
    SpecVersionMismatch,
    UnknownCommand,
    UnknownComponent,
    UnknownOp,
)
from bbnode.engine.node import Node
from bbnode.engine.snapshot import CURRENT_SNAPSHOT_SPEC_VERSION, NodeSnapshot

__all__ = [
    "CURRENT_SNAPSHOT_SPEC_VERSION",
    "Async",
    "Component",
    "DeliveryError",
    "DuplicateComponent",
    "EngineError",
    "Immediate",
    "InflightBudgetExceeded",
    "IngressFull",
    "InstallError",
    "InvalidConfig",
    "InvalidInput",
    "Node",
    "NodeConfig",
    "NodeSnapshot",
    "OpContext",
    "OpError",
    "PayloadTooLarge",
    "RestoreError",
    "SnapshotDecodeError",
    "SpecVersionMismatch",
    "UnknownCommand",
    "UnknownComponent",
    "UnknownOp",
    "component_ref",
    "op_suffixes",
    "site_id",
    "steps",
]
