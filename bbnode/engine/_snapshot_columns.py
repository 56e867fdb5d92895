"""The columnar encoding of the snapshot's per-peer tables (address book, health, bans, backoff).

A table of 100 000 rows encoded as 100 000 msgpack arrays is cheap to pack but costly to
restore: every row, peer id and address is a separate object that the restore has to check.
Encoded by column, the table is

    {"n": <row count>, <field>: <column>, ...}     one column per row field, by field name

and each column is one bin holding the msgpack array of that field's n values (packed by
msgpack in C from the rows' own values, so encoding is faithful whatever the rows hold).
Decoding unpacks each column, and where the column's items turn out to sit at a fixed stride
in that bin (every peer id of one length; every peer with one address of one length, the
common case) it records a `Strided` layout, which the restore's column checks read with a few
slices instead of visiting every object (`bbnode.engine.framework.rows`).

Decoding checks only the structure (a bin, a msgpack array of n items) and raises
`SnapshotDecodeError` naming the column; the values are checked by the restore, as for
row-encoded tables (see `_rows` in `_snapshot_decode`). Empty tables and rows of the wrong
width (only a hand-built snapshot) stay arrays of rows; the decoder reads both forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgpack

from bbnode.engine._codec import pack, unpack
from bbnode.engine.errors import SnapshotDecodeError
from bbnode.engine.framework.rows import (
    AddressBookEntrySnapshot,
    BackoffEntry,
    BlockEntrySnapshot,
    ColumnRows,
    HealthEntry,
    PackedBytes,
    PackedLists,
    Strided,
)
from bbnode.ids import IdError

__all__ = ["TABLE_ROW_TYPES", "decode_table", "encode_table"]

_BYTES: Final = "bytes"
_BYTE_LISTS: Final = "byte lists"
_VALUES: Final = "values"

# The kind of each field, in the row's field order.
_KINDS: Final[dict[type[Any], tuple[str, ...]]] = {
    AddressBookEntrySnapshot: (_BYTES, _BYTE_LISTS, _VALUES),
    HealthEntry: (_BYTES, _VALUES, _VALUES, _VALUES),
    BlockEntrySnapshot: (_BYTES, _VALUES, _VALUES),
    BackoffEntry: (_BYTES, _VALUES, _VALUES, _VALUES),
}
TABLE_ROW_TYPES: Final = frozenset(_KINDS)

# msgpack markers (msgpack spec): bin 8 (length in the next byte), fixarray of one item.
_BIN8: Final = 0xC4
_FIXARRAY_1: Final = 0x91
_FIXARRAY_0: Final = 0x90
#: msgpack's (canonical) array header for `n` items.
_array_header: Final = msgpack.Packer().pack_array_header


def encode_table(rows: Sequence[Any], row_type: type[Any]) -> Any:
    """`rows` as a columnar map, or `rows` themselves when they do not fit the columns."""
    width = len(_KINDS[row_type])
    if not rows:
        return rows
    try:
        cols = list(zip(*rows, strict=True))  # (raises for rows of different lengths)
    except (TypeError, ValueError):  # rows that are not sequences: hand-built
        return rows
    if len(cols) != width:
        return rows
    table: dict[str, Any] = {"n": len(rows)}
    for name, column in zip(row_type._fields, cols, strict=True):
        table[name] = pack(column)
    return table


# -- decoding --------------------------------------------------------------------------------------
def decode_table(where: str, raw: dict[Any, Any], row_type: type[Any]) -> ColumnRows:
    """The rows of the columnar table `raw`; `SnapshotDecodeError` names a malformed column."""
    n = raw.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise SnapshotDecodeError(f"{where}.n: expected a row count, got {n!r:.60}")
    header = _array_header(n)
    cols: list[Sequence[Any]] = []
    for name, kind in zip(row_type._fields, _KINDS[row_type], strict=True):
        at = f"{where}.{name}"
        if name not in raw:
            raise SnapshotDecodeError(f"{at}: missing column")
        data = raw[name]
        values = _unpack_column(at, data, n)
        strided = data.startswith(header)  # (a canonical header: items start right after it)
        if kind == _BYTES:
            peers = PackedBytes(values)
            peers.layout = _bin_layout(data, len(header), n, 0) if strided else None
            cols.append(peers)
        elif kind == _BYTE_LISTS:
            cols.append(_byte_lists(values, data, len(header) if strided else None))
        else:
            cols.append(values)
    return ColumnRows.build(row_type, cols)


def _unpack_column(where: str, data: Any, n: int) -> list[Any]:
    if not isinstance(data, bytes):
        raise SnapshotDecodeError(f"{where}: expected a packed column (bin), got {data!r:.60}")
    try:
        values = unpack(data)
    except (ValueError, TypeError, IdError, msgpack.UnpackException) as exc:
        raise SnapshotDecodeError(f"{where}: not valid msgpack: {exc}") from None
    if not isinstance(values, list) or len(values) != n:
        raise SnapshotDecodeError(f"{where}: expected an array of {n} items, got {values!r:.60}")
    return values


def _bin_layout(data: bytes, start: int, n: int, prefix: int) -> Strided | None:
    """The layout of `n` bin-8 items of one length, each after `prefix` marker bytes, that
    fill `data[start:]` exactly; None when the items are laid out any other way.

    Item k's bin marker and length byte are at `start + k * stride (+ prefix)`; the slices
    below check all of them, so the layout holds for every item, not just the first.
    """
    if n == 0 or len(data) < start + prefix + 2 or data[start + prefix] != _BIN8:
        return None
    width = data[start + prefix + 1]
    stride = prefix + 2 + width
    if len(data) != start + n * stride:
        return None
    marks = Strided(data, start + prefix, stride, 2, n)
    if marks.at(0) != bytes((_BIN8,)) * n or marks.at(1) != bytes((width,)) * n:
        return None
    return Strided(data, start + prefix + 2, stride, width, n)


def _byte_lists(values: list[Any], data: bytes, start: int | None) -> PackedLists:
    """The column of address lists, with its layout when every list holds one item (of one
    length) or none."""
    column = PackedLists(values)
    if start is None or not values:
        return column
    n = len(values)
    if data[start:] == bytes((_FIXARRAY_0,)) * n:
        column.per_row = 0
        return column
    layout = _bin_layout(data, start, n, 1)
    if (
        layout is not None
        and data[start : start + n * layout.stride : layout.stride] == bytes((_FIXARRAY_1,)) * n
    ):
        column.per_row = 1
        column.layout = layout
    return column
