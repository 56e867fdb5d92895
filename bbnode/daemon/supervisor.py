"""The supervisor: builds the daemon's parts, starts them in order, stops them in order.

Start: logging → state dir → identity key → snapshot load → PeerId policy → listeners →
Node (restored or fresh) → driver, checkpoints, control socket, metrics, signals →
bootstrap dials → ``READY=1``. Stop (SIGTERM/SIGINT): ``STOPPING=1`` → stop accepting →
``PreShutdown`` lifecycle → let the driver drain until quiet or ``shutdown_grace_s`` → stop
the driver → hand unwritten frames back to the engine → final snapshot (shielded) → close
connections.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import trio

from bbnode.config import Config, ConfigError, load_config
from bbnode.daemon._reader_gate import ReaderGate
from bbnode.daemon.checkpoint import Checkpointer
from bbnode.daemon.clock import EngineClock, PerfCounterClock
from bbnode.daemon.connections import ConnectionManager, ConnectionSettings
from bbnode.daemon.control import serve_control
from bbnode.daemon.control_backend import DriverControlBackend
from bbnode.daemon.counters import Counters
from bbnode.daemon.driver import INGRESS_CAPACITY, ControlCall, DriverSettings, EngineDriver
from bbnode.daemon.events import DriverInput
from bbnode.daemon.gc_tuning import tune_gc_for_serving
from bbnode.daemon.metrics import MetricsState, sample_engine
from bbnode.daemon.metrics_http import serve_metrics
from bbnode.daemon.node_factory import build_node, network_policy
from bbnode.daemon.notify import SdNotifier, watchdog_interval_s
from bbnode.daemon.peer_policy import PeerPolicy
from bbnode.daemon.signals import watch_signals
from bbnode.daemon.subscriptions import SubscriptionHub
from bbnode.engine.component import Component
from bbnode.keyfile import load_or_create_key
from bbnode.logs import configure_logging
from bbnode.store import SnapshotStore

__all__ = ["Daemon", "run_daemon"]

log = structlog.get_logger(component="supervisor")


def _under(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


@dataclass
class Daemon:
    """One daemon run; :meth:`serve` returns the process exit code."""

    config: Config
    notifier: SdNotifier = field(default_factory=SdNotifier.from_environ)
    counters: Counters = field(default_factory=Counters)
    #: Components installed besides the built-ins (benches, embedding applications).
    extra_components: list[Component] = field(default_factory=list)
    #: Once serving, apply the process-wide GC settings of :mod:`.gc_tuning` (what
    #: ``bbnode run`` does; off by default, since they belong to the process's owner).
    tune_gc: bool = False

    def __post_init__(self) -> None:
        self._requests_send, self._requests = trio.open_memory_channel[str](16)
        #: Set once serving (READY); ``backend`` then runs calls in the driver task.
        self.ready = trio.Event()
        self.backend: DriverControlBackend | None = None

    # -- signal callbacks (sync; they only queue a request) ------------------------------------
    def request_stop(self, why: str = "request") -> None:
        """Ask for a graceful stop."""
        with contextlib.suppress(trio.WouldBlock):
            self._requests_send.send_nowait("stop")

    def request_reload(self) -> None:
        """Ask for a config reload."""
        with contextlib.suppress(trio.WouldBlock):
            self._requests_send.send_nowait("reload")

    async def serve(self) -> int:
        """Run until stopped; returns 0 after a graceful stop."""
        cfg = self.config
        state_dir = cfg.node.state_dir
        await trio.to_thread.run_sync(lambda: state_dir.mkdir(parents=True, exist_ok=True))
        key = await trio.to_thread.run_sync(
            load_or_create_key, _under(state_dir, cfg.node.key_file)
        )
        store = SnapshotStore(_under(state_dir, cfg.snapshot.directory), keep=cfg.snapshot.keep)
        loaded = await trio.to_thread.run_sync(store.load)
        for problem in loaded.problems:
            log.error("snapshot_problem", reason=str(problem))
        snapshot = loaded.snapshot
        clock = EngineClock()
        policy = PeerPolicy(clock.now_ns)
        policy.set_config(cfg.peers.block, cfg.peers.allow or None)

        send, receive = trio.open_memory_channel[DriverInput | ControlCall](INGRESS_CAPACITY)
        manager = ConnectionManager(
            key,
            ConnectionSettings(
                handshake_timeout_s=cfg.network.handshake_timeout_s,
                idle_timeout_s=cfg.network.idle_timeout_s,
                max_frame_bytes=cfg.network.max_frame_bytes,
            ),
            network_policy(cfg),
            send,
            policy.check,
            self.counters,
            readers=ReaderGate(),  # released by the driver after each turn
        )
        checkpointer = Checkpointer(store, self.counters)
        hub = SubscriptionHub()
        started_s = trio.current_time()
        async with trio.open_nursery() as nursery:
            listen = await nursery.start(manager.run, list(cfg.node.listen))
            built = build_node(cfg, key.peer_id, listen, snapshot, self.extra_components)
            # No connection task has run yet (no await since the listeners started), so
            # restored runtime bans are in force before the first handshake completes.
            policy.load_from(built.node.governor)
            driver = EngineDriver(
                built.node,
                manager,
                clock,
                checkpointer,
                hub,
                self.counters,
                policy,
                self.notifier,
                DriverSettings(
                    snapshot_interval_s=cfg.snapshot.interval_s,
                    heartbeat_module="heartbeat" if cfg.protocols.heartbeat.enabled else None,
                    watchdog_interval_s=watchdog_interval_s(),
                ),
                receive,
            )
            backend = DriverControlBackend(
                driver, send, started_s, restore_failed=loaded.restore_failed or built.failed
            )
            backend.module_names = set(built.module_names)
            driver.set_peer_lists(cfg.peers.block, cfg.peers.allow or None)
            for peer, addresses in built.static_addresses.items():
                driver.static_addresses[peer] = list(addresses)
                driver.known_peers.add(peer)
            for module in built.start_ops:
                built.node.invoke(module, "start", {})
            log.info(
                "node_started",
                peer=str(key.peer_id),
                listen=[str(a) for a in listen],
                restored=snapshot is not None and not built.failed,
            )
            await nursery.start(checkpointer.run)
            driver_scope = trio.CancelScope()

            async def run_driver(task_status: trio.TaskStatus[None]) -> None:
                with driver_scope:
                    await driver.run(task_status=task_status)

            await nursery.start(run_driver)
            control_path = _under(state_dir, cfg.control.socket)
            control_scope = trio.CancelScope()

            async def run_control(task_status: trio.TaskStatus[Path]) -> None:
                with control_scope:
                    await serve_control(control_path, backend, hub, task_status=task_status)

            await nursery.start(run_control)
            if cfg.metrics.listen is not None:  # not reloadable: a new listen needs a restart
                metrics = MetricsState(
                    key.peer_id,
                    self.counters,
                    manager,
                    checkpointer,
                    lambda: send.statistics().current_buffer_used,
                )
                driver.observe_turn_s = metrics.turns.observe
                await nursery.start(
                    serve_metrics,
                    cfg.metrics.listen,
                    metrics,
                    lambda: backend.call(sample_engine),
                )
            await nursery.start(watch_signals, self.request_stop, self.request_reload)
            for peer, addresses in built.static_addresses.items():
                manager.dial(peer, addresses)
            for address in built.bootstrap_links:
                manager.keep_bootstrap_link(address, driver.learn_bootstrap_peer)
            self.notifier.ready(status=f"serving as {key.peer_id} on {len(listen)} address(es)")
            await backend.call(lambda d: d.start_watchdog())
            self.backend = backend
            if self.tune_gc:
                tune_gc_for_serving()
            self.ready.set()
            async for request in self._requests:
                if request == "reload":
                    await self._reload(backend, manager)
                    continue
                break
            await self._shutdown(backend, driver, manager, driver_scope, hub)
            control_scope.cancel()
            nursery.cancel_scope.cancel()
        self.notifier.close()
        log.info("node_stopped", peer=str(key.peer_id))
        return 0

    async def _reload(self, backend: DriverControlBackend, manager: ConnectionManager) -> None:
        self.notifier.reloading()
        source = self.config.source
        try:
            if source is None:
                raise ConfigError([])
            new = await trio.to_thread.run_sync(load_config, source)
        except ConfigError as exc:
            self.counters.incr("config.reload_failed")
            log.error(
                "config_reload_rejected",
                reason=str(exc) or "no config file to reload (running on defaults)",
            )
            self.notifier.ready(status="reload rejected; old config in force")
            return
        manager.set_policy(network_policy(new))
        manager.enforce_network_policy()

        def apply(d: EngineDriver) -> None:
            d.set_peer_lists(new.peers.block, new.peers.allow or None)

        await backend.call(apply)
        try:
            configure_logging(new.log.level, new.log.format)
        except ValueError as exc:
            log.error("log_reconfigure_failed", reason=str(exc))
        self.config = new
        self.counters.incr("config.reloaded")
        log.info("config_reloaded", source=str(source))
        self.notifier.ready(status="config reloaded")

    async def _shutdown(
        self,
        backend: DriverControlBackend,
        driver: EngineDriver,
        manager: ConnectionManager,
        driver_scope: trio.CancelScope,
        hub: SubscriptionHub,
    ) -> None:
        grace_s = self.config.node.shutdown_grace_s
        self.notifier.stopping()
        log.info("shutdown_started", grace_s=grace_s)
        manager.stop_accepting()
        with trio.move_on_after(grace_s):
            await backend.call(lambda d: d.node.fire_lifecycle("PreShutdown"))
            # Quiet = nothing queued for sockets and a full driver turn with no steps.
            while (  # noqa: ASYNC110 - quiet is a property of two owners, not one event
                manager.queued_frames() or await backend.call(lambda d: d.turn())
            ):
                await trio.sleep(0.01)
        driver_scope.cancel()
        unsent = manager.take_unsent()
        driver.give_back(unsent)
        with trio.CancelScope(shield=True), trio.move_on_after(max(grace_s, 5.0)):
            try:
                path = await driver.checkpointer.write_now(driver.node.snapshot())
                log.info("final_snapshot_written", path=str(path), unsent_frames=len(unsent))
            except Exception as exc:  # logged; shutdown still completes
                log.error("final_snapshot_failed", reason=str(exc))
        hub.close_all()
        manager.close_all("shutdown")


def run_daemon(config: Config) -> int:
    """Configure logging and run a :class:`Daemon` under ``trio.run``; the exit code."""
    configure_logging(config.log.level, config.log.format)
    try:
        return trio.run(Daemon(config, tune_gc=True).serve, clock=PerfCounterClock())
    except OSError as exc:
        log.error("daemon_failed", reason=str(exc))
        return 1
