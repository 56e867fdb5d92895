"""Throughput of bbnode.wire beside raw `noiseprotocol` doing the same work in the same run.

Prints one JSON object per line:
  {"bench": "handshake", "ours_per_s": ..., "raw_noise_per_s": ..., "ratio": ...}
  {"bench": "frames", "frame_bytes": 100, "mode": "coalesced", "ours_frames_per_s": ...,
   "raw_noise_frames_per_s": ..., "ratio": ..., "ours_bulk_frames_per_s": ..., "bulk_ratio": ...,
   "ours_into_frames_per_s": ..., "into_ratio": ...}

Handshakes are complete XX exchanges, both sides in this process (one core); "raw" is
noiseprotocol alone with the same static keys and payload sizes but no libp2p payload checks.
"ours" reconnects known peers (their static-key signatures are in the verified cache);
"new_peer" clears that cache first, so both Ed25519 verifications run.
Frames are encode + encrypt + decrypt + decode per frame: "ours" through `send_frame` and one
`FrameReceived` per `next_event()`, "ours_bulk" through `send_frames` and `next_frames()` (the
batch API, no event object per frame), "ours_into" like "ours_bulk" but sending through
`data_to_send_into` one reused buffer, read in place by the receiver (no buffer allocated per
burst; what the daemon does for its direct writes). For "coalesced" the raw figure is noiseprotocol
encrypting and decrypting the same plaintext bytes (u32 header + frame, back to back) in
maximal 65 519-byte messages; for "one_by_one" it is one noiseprotocol message per frame.
"coalesced_mixed" is "coalesced" with frame sizes spread uniformly over 50%..150% of
frame_bytes (no two neighbours need be equal), the case equal-sized bursts do not cover.
Usage: python bench/wire_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from noise.connection import Keypair, NoiseConnection

from bbnode.wire import IdentityKey, SecureConnection
from bbnode.wire.handshake import _verified
from bbnode.wire.transport import MAX_PLAINTEXT

NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"


def compare(ours: Callable[[], int], raw: Callable[[], int], seconds: float) -> tuple[float, float]:
    """Items per second of each (`work()` returns how many items it did), best of 5 rounds.

    The two alternate within each round, so load from other processes hits both alike.
    """
    best = {ours: 0.0, raw: 0.0}
    for _ in range(5):
        for work in (ours, raw):
            done = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds / 5:
                done += work()
            best[work] = max(best[work], done / elapsed)
    return best[ours], best[raw]


def _pump(a: SecureConnection, b: SecureConnection) -> None:
    while True:
        to_b = a.data_to_send()
        if to_b:
            b.receive_data(to_b)
        while b.next_event() is not None:
            pass
        to_a = b.data_to_send()
        if to_a:
            a.receive_data(to_a)
        while a.next_event() is not None:
            pass
        if not to_a and not to_b:
            return


def bench_handshake(seconds: float) -> dict[str, object]:
    a, b = IdentityKey.generate(), IdentityKey.generate()
    sa, sb = a.noise_static(), b.noise_static()
    payload = bytes(180)  # about the size of a libp2p payload with the extension

    def ours() -> int:
        i = SecureConnection(a, initiator=True, expected_peer=b.peer_id)
        r = SecureConnection(b, initiator=False)
        _pump(i, r)
        assert i.is_established
        assert r.is_established
        return 1

    def raw() -> int:
        i = NoiseConnection.from_name(NAME)
        r = NoiseConnection.from_name(NAME)
        i.set_as_initiator()
        r.set_as_responder()
        i.set_keypair_from_private_bytes(Keypair.STATIC, sa.private)
        r.set_keypair_from_private_bytes(Keypair.STATIC, sb.private)
        i.start_handshake()
        r.start_handshake()
        r.read_message(i.write_message())
        i.read_message(r.write_message(payload))
        r.read_message(i.write_message(payload))
        assert i.handshake_finished
        assert r.handshake_finished
        return 1

    def ours_new_peer() -> int:
        # A peer never seen before: both identity signatures really are verified.
        _verified._entries.clear()
        return ours()

    o, w = compare(ours, raw, seconds)
    cold, w2 = compare(ours_new_peer, raw, seconds)
    return {
        "bench": "handshake",
        "ours_per_s": round(o),
        "raw_noise_per_s": round(w),
        "ratio": round(o / w, 3),
        "ours_new_peer_per_s": round(cold),
        "new_peer_ratio": round(cold / w2, 3),
    }


def _raw_pair() -> tuple[NoiseConnection, NoiseConnection]:
    i = NoiseConnection.from_name(NAME)
    r = NoiseConnection.from_name(NAME)
    i.set_as_initiator()
    r.set_as_responder()
    i.set_keypair_from_private_bytes(Keypair.STATIC, IdentityKey.generate().noise_static().private)
    r.set_keypair_from_private_bytes(Keypair.STATIC, IdentityKey.generate().noise_static().private)
    i.start_handshake()
    r.start_handshake()
    r.read_message(i.write_message())
    i.read_message(r.write_message())
    r.read_message(i.write_message())
    return i, r


def _connected() -> tuple[SecureConnection, SecureConnection]:
    a, b = IdentityKey.generate(), IdentityKey.generate()
    i = SecureConnection(a, initiator=True)
    r = SecureConnection(b, initiator=False)
    _pump(i, r)
    return i, r


def bench_frames(size: int, mode: str, seconds: float) -> dict[str, object]:
    frame = bytes(size)
    batch = max(1, min(2000, (1024 * 1024) // size))
    if mode == "coalesced_mixed":
        rng = random.Random(size)
        frames = [bytes(rng.randint(size // 2, size + size // 2)) for _ in range(batch)]
    else:
        frames = [frame] * batch
    i, r = _connected()
    ri, rr = _raw_pair()

    def ours_coalesced() -> int:
        for f in frames:
            i.send_frame(f)
        r.receive_data(i.data_to_send())
        got = 0
        while r.next_event() is not None:
            got += 1
        assert got == batch
        return batch

    def ours_bulk() -> int:
        i.send_frames(frames)
        r.receive_data(i.data_to_send())
        assert len(r.next_frames()) == batch
        return batch

    buffer = bytearray()

    def ours_into() -> int:
        i.send_frames(frames)
        end = i.data_to_send_into(buffer)
        with memoryview(buffer) as view:
            r.receive_data(view[:end])
            assert len(r.next_frames()) == batch
        return batch

    def ours_one_by_one() -> int:
        for _ in range(batch):
            i.send_frame(frame)
            r.receive_data(i.data_to_send())
            r.next_event()
        return batch

    # The same plaintext bytes the codec produces: a u32 header before each frame.
    stream = b"".join(len(f).to_bytes(4, "big") + f for f in frames)

    def raw_coalesced() -> int:
        for start in range(0, len(stream), MAX_PLAINTEXT):
            rr.decrypt(ri.encrypt(stream[start : start + MAX_PLAINTEXT]))
        return batch

    chunks = [frame[s : s + MAX_PLAINTEXT] for s in range(0, max(size, 1), MAX_PLAINTEXT)]

    def raw_one_by_one() -> int:
        for _ in range(batch):
            for chunk in chunks:
                rr.decrypt(ri.encrypt(chunk))
        return batch

    coalesced = mode != "one_by_one"
    ours = ours_coalesced if coalesced else ours_one_by_one
    raw = raw_coalesced if coalesced else raw_one_by_one
    o, w = compare(ours, raw, seconds)
    row: dict[str, object] = {
        "bench": "frames",
        "frame_bytes": size,
        "mode": mode,
        "ours_frames_per_s": round(o),
        "raw_noise_frames_per_s": round(w),
        "ours_mb_per_s": round(o * size / 1e6, 1),
        "ratio": round(o / w, 3),
    }
    if coalesced:
        bulk, w2 = compare(ours_bulk, raw, seconds)
        row["ours_bulk_frames_per_s"] = round(bulk)
        row["bulk_ratio"] = round(bulk / w2, 3)
        into, w3 = compare(ours_into, raw, seconds)
        row["ours_into_frames_per_s"] = round(into)
        row["into_ratio"] = round(into / w3, 3)
    if mode == "coalesced":
        # The same frames through noiseprotocol one message each (what coalescing replaces).
        _, per_message = compare(ours, raw_one_by_one, seconds)
        row["raw_noise_one_message_per_frame_per_s"] = round(per_message)
        row["ratio_vs_one_message_per_frame"] = round(o / per_message, 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    args = parser.parse_args()
    seconds = 0.3 if args.quick else 1.5
    print(json.dumps(bench_handshake(seconds)), flush=True)
    for size in (100, 1024, 65536):
        for mode in ("coalesced", "coalesced_mixed", "one_by_one"):
            print(json.dumps(bench_frames(size, mode, seconds)), flush=True)


if __name__ == "__main__":
    main()
