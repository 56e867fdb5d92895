"""bbnode: a Python port of the bytesandbrains runtime, run as a network daemon.

`bbnode.engine` and `bbnode.wire` are sans-IO cores (no sockets, no clocks, no logging);
`bbnode.daemon` runs them under trio; `bbnode.store` keeps snapshots on disk.
"""

__version__ = "0.1.0"
