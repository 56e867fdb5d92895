"""The trio daemon: runs a sans-IO :class:`bbnode.engine.Node` as a network service.

Layout (one job per module): ``supervisor`` (startup/shutdown order), ``connections``
(listener, dialer, per-connection reader/writer), ``driver`` (the only task touching the
Node), ``checkpoint`` (snapshots to disk), ``control``/``control_client`` (the Unix control
socket), ``notify`` (sd_notify), ``signals``, ``policy`` (CIDR and connection limits),
``counters`` (a small metrics registry), ``commands`` (the ``run`` and ``ctl`` subcommands).
"""
