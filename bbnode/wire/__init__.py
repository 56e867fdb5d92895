"""bbnode's secure transport, sans-IO: identity keys, the Noise XX handshake, the frame codec.

Everything here is pure (no sockets, clocks, files or logging). `SecureConnection` is the entry
point: bytes in, events and bytes out, exactly as SPEC §4 describes; `IdentityKey` is a node's
Ed25519 identity in libp2p's encodings. Key *files* live in `bbnode.keyfile`.

Errors: `LocalProtocolError` (caller misuse) and `RemoteProtocolError` (peer misbehaviour, with
a `.reason` code) under `WireError`; see `bbnode.wire.errors`.
"""

from bbnode.wire.connection import (
    DEFAULT_MAX_FRAME_BYTES,
    PROTOCOL_ID,
    ConnectionState,
    SecureConnection,
)
from bbnode.wire.errors import (
    BadSignature,
    DecryptFailed,
    FrameTooLarge,
    KeyFileError,
    KeyFormatError,
    KeyTypeNotSupported,
    LocalProtocolError,
    MalformedFrame,
    MalformedHandshake,
    PeerIdMismatch,
    RemoteProtocolError,
    UnexpectedEof,
    UnsupportedKeyType,
    UnsupportedProtocol,
    WireError,
)
from bbnode.wire.events import ConnectionClosed, Event, FrameReceived, HandshakeComplete
from bbnode.wire.keys import IdentityKey, NoiseStaticKey

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "PROTOCOL_ID",
    "BadSignature",
    "ConnectionClosed",
    "ConnectionState",
    "DecryptFailed",
    "Event",
    "FrameReceived",
    "FrameTooLarge",
    "HandshakeComplete",
    "IdentityKey",
    "KeyFileError",
    "KeyFormatError",
    "KeyTypeNotSupported",
    "LocalProtocolError",
    "MalformedFrame",
    "MalformedHandshake",
    "NoiseStaticKey",
    "PeerIdMismatch",
    "RemoteProtocolError",
    "SecureConnection",
    "UnexpectedEof",
    "UnsupportedKeyType",
    "UnsupportedProtocol",
    "WireError",
]
