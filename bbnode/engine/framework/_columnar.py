"""Decoded columns that remember how their bytes were laid out (the fast restore checks).

The snapshot decoder (`bbnode.engine._snapshot_columns`) reads each per-peer table as columns,
each column one msgpack array stored as a bin. When a column's items sit at a fixed stride in
that bin (every peer id of one length, every peer with one address of one length), the
decoder says so with a `Strided` layout, and the checks in `rows` read the bytes they need
with a few strided slices of the bin instead of visiting every one of 100 000 objects.

`ColumnRows` carries the columns along with the rows built from them, so the restore checks
the columns it was given instead of splitting 100 000 rows into columns again. Nothing here
decides whether data is valid; it only describes where the bytes are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, TypeVar

__all__ = ["ColumnRows", "PackedBytes", "PackedLists", "Strided", "adopt_rows"]

_Row = TypeVar("_Row", bound=tuple[Any, ...])


@dataclass(frozen=True, slots=True)
class Strided:
    """`count` byte strings of `width` bytes each, item k at `buffer[start + k * stride:]`."""

    buffer: bytes
    start: int
    stride: int
    width: int
    count: int

    def at(self, offset: int) -> bytes:
        """Byte `offset` (< `width`) of every item, in item order (one C-level slice)."""
        return self.buffer[
            self.start + offset : self.start + self.count * self.stride : self.stride
        ]


class PackedBytes(tuple[bytes, ...]):
    """A column of byte strings; `layout` (or None) says they are `Strided` in a buffer."""

    layout: Strided | None = None


class PackedLists(tuple[list[bytes], ...]):
    """A column of lists of byte strings: `per_row` items in every list (None: it varies),
    and the `layout` of all the items, row after row (None when not strided)."""

    per_row: int | None = None
    layout: Strided | None = None


class ColumnRows(list[Any]):
    """Rows the snapshot decoder built from columns, remembering `columns` (see the module
    docstring). Changing the list through its methods forgets them (`columns = None`), so
    the checks then read the rows themselves; the rows are tuples and never change.
    """

    __slots__ = ("columns",)

    columns: tuple[Sequence[Any], ...] | None

    @classmethod
    def build(cls, row_type: type[_Row], cols: Sequence[Sequence[Any]]) -> ColumnRows:
        """Rows of `row_type` zipped from `cols` (all of one length), in C."""
        rows = cls(map(tuple.__new__, repeat(row_type), zip(*cols, strict=True)))
        rows.columns = tuple(cols)
        return rows


def _forgetting(method: Callable[..., Any]) -> Callable[..., Any]:
    def run(self: ColumnRows, *args: Any, **kwargs: Any) -> Any:
        self.columns = None
        return method(self, *args, **kwargs)

    run.__name__ = method.__name__
    return run


for _name in (
    "__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert", "pop",
    "remove", "clear", "sort", "reverse",
):  # fmt: skip
    setattr(ColumnRows, _name, _forgetting(getattr(list, _name)))


def adopt_rows(rows: Sequence[Any], row_type: type[_Row]) -> list[_Row]:
    """`rows` (already checked) as a list of `row_type` rows, copying only what is not one."""
    if (
        type(rows) is ColumnRows
        and rows.columns is not None
        and (not rows or type(rows[0]) is row_type)
    ):
        return list(rows)  # `ColumnRows.build` made every row a `row_type`
    if set(map(type, rows)) <= {row_type}:
        return list(rows)
    return list(map(tuple.__new__, repeat(row_type), rows))
