"""A faster `__init__` for the frozen, slotted dataclasses built on the engine's hot path.

A frozen dataclass's generated `__init__` stores every field with
`object.__setattr__(self, "name", value)` (a global lookup, an attribute lookup and a
three-argument call per field), because its own `__setattr__` refuses writes. For the records
the engine builds once or more per envelope (`OpCompleted`, `SendEnvelope`, `AppEvent`,
`Immediate`, ...) that was a measurable share of the per-envelope cost.

`fast_frozen_init(cls)` replaces it with an equivalent `__init__` that stores through the
class's own slot descriptors (the same storage the frozen check guards; no name lookups). Same
parameters, same defaults, same order, so `cls(...)`, `dataclasses.replace`, pickling, equality
and `repr` behave exactly as before, and the instances stay frozen. It refuses classes it
cannot reproduce exactly (`__post_init__`, default factories, `init=False` or keyword-only
fields) rather than guessing.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["fast_frozen_init"]

_T = TypeVar("_T")


def fast_frozen_init(cls: type[_T]) -> type[_T]:
    """Give the frozen slotted dataclass `cls` a descriptor-storing `__init__`; returns `cls`."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    if not (params.frozen and "__slots__" in cls.__dict__):
        raise TypeError(f"{cls.__name__}: fast_frozen_init needs a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: has __post_init__")
    names: list[str] = []
    namespace: dict[str, Any] = {}
    args: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: unsupported field for fast_frozen_init")
        names.append(f.name)
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names) or "    pass\n"
    source = f"def __init__(self, {', '.join(args)}):\n{body}"
    exec(source, namespace)  # built from field names only, as dataclasses itself does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    type.__setattr__(cls, "__init__", init)
    return cls
