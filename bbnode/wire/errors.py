"""The one error hierarchy of `bbnode.wire`.

Two families, as h11 does it: `LocalProtocolError` means *our caller* misused the API (sent a
frame before the handshake finished, a frame over the size limit); `RemoteProtocolError` means
*the peer* misbehaved (bad signature, garbage, replay) and the connection must be dropped. Every
remote error carries a short, stable `reason` code the daemon can log and count as a metric
label; the message is for humans. A connection fed hostile bytes either progresses or raises a
`RemoteProtocolError` subclass, never anything else.

Malformed key material (a key protobuf, a key file) is neither: it is `KeyFormatError` or
`KeyFileError`, raised to whoever loads the key.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadSignature",
    "DecryptFailed",
    "FrameTooLarge",
    "KeyFileError",
    "KeyFormatError",
    "KeyTypeNotSupported",
    "LocalProtocolError",
    "MalformedFrame",
    "MalformedHandshake",
    "PeerIdMismatch",
    "RemoteProtocolError",
    "UnexpectedEof",
    "UnsupportedKeyType",
    "UnsupportedProtocol",
    "WireError",
]


class WireError(Exception):
    """Base of every error `bbnode.wire` raises on purpose."""


class LocalProtocolError(WireError):
    """The caller used the connection wrongly; the peer did nothing wrong."""


class RemoteProtocolError(WireError):
    """The peer sent something we must not accept; drop the connection.

    `reason` is a short stable code (a metric label); `str(error)` is the human explanation.
    Subclasses fix the reason; `RemoteProtocolError` itself is never raised directly.
    """

    REASON: ClassVar[str] = "protocol_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason: str = self.REASON


class MalformedHandshake(RemoteProtocolError):
    """A handshake message or its payload could not be parsed or decrypted."""

    REASON = "malformed_handshake"


class BadSignature(RemoteProtocolError):
    """The payload's signature over the Noise static key does not verify."""

    REASON = "bad_signature"


class UnsupportedKeyType(RemoteProtocolError):
    """The peer's identity key is not Ed25519 (the only type bbnode accepts)."""

    REASON = "unsupported_key_type"


class PeerIdMismatch(RemoteProtocolError):
    """The peer authenticated as a different PeerId from the one we expected."""

    REASON = "peer_id_mismatch"


class UnsupportedProtocol(RemoteProtocolError):
    """The peer does not announce the application protocol we speak."""

    REASON = "unsupported_protocol"


class DecryptFailed(RemoteProtocolError):
    """A transport message failed authentication: tampered, reordered or replayed."""

    REASON = "decrypt_failed"


class FrameTooLarge(RemoteProtocolError):
    """A frame header announced more bytes than `max_frame_bytes`."""

    REASON = "frame_too_large"


class MalformedFrame(RemoteProtocolError):
    """Decrypted transport data does not follow the frame codec."""

    REASON = "malformed_frame"


class UnexpectedEof(RemoteProtocolError):
    """The peer closed the stream mid-handshake or mid-message."""

    REASON = "unexpected_eof"


class KeyFormatError(WireError, ValueError):
    """Key bytes (a libp2p key protobuf) are malformed; the message names the problem."""


class KeyTypeNotSupported(KeyFormatError):
    """Well-formed key bytes of a type other than Ed25519 (RSA, secp256k1, ECDSA)."""


class KeyFileError(WireError):
    """A key file cannot be used: unreadable, malformed, or readable by group/other.

    Raised by `bbnode.keyfile`; defined here so the whole wire error family lives in one place
    and `from bbnode.wire import KeyFileError` works.
    """
