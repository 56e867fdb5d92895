"""Built-in components: heartbeat, peer exchange, pubsub. They run inside the sans-IO engine."""

from bbnode.protocols.heartbeat import Heartbeat
from bbnode.protocols.peer_exchange import PeerExchange
from bbnode.protocols.pubsub import Pubsub

__all__ = ["Heartbeat", "PeerExchange", "Pubsub"]
