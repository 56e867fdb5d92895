"""Envelope codec throughput: encodes/s and decodes/s, one JSON line per case.

Run: `.venv/bin/python bench/envelope_codec.py [--seconds 1.0]`. Cases: a one-fill envelope
with a 100-byte payload (the engine's common case) and a 16-fill envelope of 1 KiB payloads.
"""

from __future__ import annotations

import argparse
import json
import time

from bbnode.engine.envelope import (
    Correlation,
    CorrelationKind,
    SlotFill,
    WireEnvelope,
    decode_envelope,
    encode_envelope,
    type_hash_of,
)
from bbnode.ids import Address, PeerId


def _envelope(n_fills: int, payload_bytes: int) -> WireEnvelope:
    suffix = Address([("component", 0x1234ABCD), ("op", "on_message")]).to_bytes()
    src = Address.tcp("127.0.0.1", 7400, PeerId.from_u64(1)).to_bytes()
    fill = SlotFill(suffix, b"\xa5" * payload_bytes, False, type_hash_of("bytes"))
    return WireEnvelope(
        fills=(fill,) * n_fills,
        correlation=Correlation(CorrelationKind.REQUEST, 42),
        src_peer_addresses=(src,),
    )


def _rate(fn: object, arg: object, seconds: float) -> float:
    assert callable(fn)
    batch = 1000
    done = 0
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn(arg)
        done += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    for name, n_fills, payload in (("1fill_100B", 1, 100), ("16fill_1KiB", 16, 1024)):
        env = _envelope(n_fills, payload)
        data = encode_envelope(env)
        assert decode_envelope(data).envelope == env
        line = {
            "bench": "envelope_codec",
            "case": name,
            "envelope_bytes": len(data),
            "encode_per_s": round(_rate(encode_envelope, env, args.seconds)),
            "decode_per_s": round(_rate(decode_envelope, data, args.seconds)),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
