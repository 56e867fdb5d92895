"""Framework primitives of the engine: peer policy, backoff, addressing, dedup, queues, timers.

Each primitive is a small, pure, deterministic class in its own module: no clock (every time
is a `now_ns: int` argument), no I/O, no logging. Each exports its state as plain
msgpack-able data (ints, bytes, str, lists, dicts, None; PeerIds as multihash bytes) and
rebuilds itself from scratch from that data, so the engine can snapshot and restore it.
Upstream constants (bb-runtime) are kept as defaults; see SPEC §3.5.

Errors: `FrameworkUsageError` (bad argument) and `FrameworkStateError` (bad restore data),
both `FrameworkError`, a `ValueError`.
"""

from bbnode.engine.framework.address_book import (
    DEFAULT_ADDRESS_BOOK_MAX_PEERS,
    DEFAULT_MAX_ADDRESSES_PER_PEER,
    AddressBook,
    AddressBookEntry,
)
from bbnode.engine.framework.backoff import (
    DEFAULT_BACKOFF_BASE_NS,
    DEFAULT_BACKOFF_MAX_NS,
    BackoffState,
    BackoffTable,
)
from bbnode.engine.framework.backpressure import (
    DEFAULT_BACKPRESSURE_HIGH_WATER,
    DEFAULT_BACKPRESSURE_MIN_INTERVAL_NS,
    DEFAULT_NOTICES_BEFORE_ACTION,
    BackpressureSignal,
    BackpressureTracker,
)
from bbnode.engine.framework.blocklist import BlockEntry, BlockSource
from bbnode.engine.framework.counters import Counters
from bbnode.engine.framework.decisions import (
    Allow,
    Blocklisted,
    BlockReason,
    Cooldown,
    Decision,
    Deny,
    LifecycleTransition,
    NotAllowlisted,
)
from bbnode.engine.framework.dedup import DEFAULT_DEDUP_WINDOW, InboundDedup
from bbnode.engine.framework.errors import (
    FrameworkError,
    FrameworkStateError,
    FrameworkUsageError,
)
from bbnode.engine.framework.governor import DEFAULT_FAILURE_THRESHOLD, PeerGovernor, PeerHealth
from bbnode.engine.framework.outbound_queue import DEFAULT_OUTBOUND_CAPACITY, OutboundQueue
from bbnode.engine.framework.requests import FIRST_WIRE_REQ_ID, InFlightRequest, RequestTracker
from bbnode.engine.framework.rtt import RttTracker
from bbnode.engine.framework.scheduler import Scheduler, TimerHandle

__all__ = [
    "DEFAULT_ADDRESS_BOOK_MAX_PEERS",
    "DEFAULT_BACKOFF_BASE_NS",
    "DEFAULT_BACKOFF_MAX_NS",
    "DEFAULT_BACKPRESSURE_HIGH_WATER",
    "DEFAULT_BACKPRESSURE_MIN_INTERVAL_NS",
    "DEFAULT_DEDUP_WINDOW",
    "DEFAULT_FAILURE_THRESHOLD",
    "DEFAULT_MAX_ADDRESSES_PER_PEER",
    "DEFAULT_NOTICES_BEFORE_ACTION",
    "DEFAULT_OUTBOUND_CAPACITY",
    "FIRST_WIRE_REQ_ID",
    "AddressBook",
    "AddressBookEntry",
    "Allow",
    "BackoffState",
    "BackoffTable",
    "BackpressureSignal",
    "BackpressureTracker",
    "BlockEntry",
    "BlockReason",
    "BlockSource",
    "Blocklisted",
    "Cooldown",
    "Counters",
    "Decision",
    "Deny",
    "FrameworkError",
    "FrameworkStateError",
    "FrameworkUsageError",
    "InFlightRequest",
    "InboundDedup",
    "LifecycleTransition",
    "NotAllowlisted",
    "OutboundQueue",
    "PeerGovernor",
    "PeerHealth",
    "RequestTracker",
    "RttTracker",
    "Scheduler",
    "TimerHandle",
]
