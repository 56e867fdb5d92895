"""Errors raised by the framework primitives.

Every primitive here is driven by the engine, never directly by a peer, so all of these are
*local* errors: the caller passed a bad argument, or handed `restore_state` data that is not
a state this package exported. A peer's garbage is rejected earlier, by the wire and envelope
decoders, and never reaches these classes.
"""

from __future__ import annotations

__all__ = ["FrameworkError", "FrameworkStateError", "FrameworkUsageError"]


class FrameworkError(ValueError):
    """Base of every error raised by `bbnode.engine.framework`."""


class FrameworkUsageError(FrameworkError):
    """A method was called with an argument outside its documented domain.

    Examples: a negative capacity, a block source other than "config"/"runtime", a counter
    decremented. The message names the argument and the value that was refused.
    """


class FrameworkStateError(FrameworkError):
    """Data given to `restore_state` / `from_state` is not a state this package exports.

    The message names the field (for example `backoff[3].attempts`) and what is wrong with it.
    Restore never half-applies: the primitive is left as it was when this is raised.
    """
