"""What every agent does: claim runs whose labels it has, launch each, make sure it ends.

Leases. Claiming a run gives it a lease (``lease_seconds``, default 30 s, or
``PREFECT_STORAGE_LEASE_SECONDS``). While the agent holds a run (Claimed, Running,
Cancelling) a heartbeat thread renews its lease every third of that; the run's own process
(``prefect-storage execute``, started in its own session) renews it too, so a run whose
agent was SIGKILLed but whose process lives on finishes normally. A run nobody renews is
ended by the next reaper (any agent's poll, ``run --wait``, ``runs ls``): ``Failed`` with
"agent lost: <agent> stopped renewing its lease ...", or ``Cancelled`` if it was Cancelling.

Stopping. SIGINT (Ctrl-C) and SIGTERM (``systemctl stop``) stop the agent the same way: it
claims nothing more, sends SIGTERM to each run's process group (SIGKILL after
``grace_seconds``; a second signal kills at once), records those runs ``Failed`` ("agent
stopped (SIGTERM) while the run was Running") unless they ended, removes its row from the
registry's agents table and returns. A cancel request (``runs cancel``) is seen by the
heartbeat and stops that run's process the same way, then the run ends ``Cancelled``.

Outages. Every registry call of the agent survives the registry being unreachable: it is
retried with exponential backoff (0.5 s doubling to 30 s; the agent never gives up, unlike
:mod:`prefect_storage.retry`'s deadline policy), with one warning when the outage starts and
one line when it ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import signal
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from ..backends import backend_class
from ..config import HOME_ENV, home_dir
from ..exceptions import RegistryUnavailableError, SettingError, StorageConfigError
from ..registry import (
    LEASE_SECONDS_ENV,
    REGISTRY_URL_ENV,
    FlowRecord,
    FlowRegistry,
    FlowRunRecord,
    RunState,
    lease_seconds_from_env,
)

logger = logging.getLogger("prefect_storage.agent")

T = TypeVar("T")

STOP_GRACE_SECONDS = 10.0
"""Seconds a run's process gets between SIGTERM and SIGKILL when it is stopped."""

FINALISE_SECONDS = 30.0
"""After the grace period, how long a stopping agent keeps trying to record final states."""

FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
"""Retry delays while the registry is unreachable: doubled from the first up to this cap."""

_CANCEL = "cancel"
"""The stop reason of a run cancelled with ``runs cancel`` (other reasons: signal names)."""


def execute_command(run_id: str) -> list[str]:
    """The arguments to a Python interpreter that execute flow run ``run_id`` in a fresh
    process (``prefect-storage execute RUN_ID``), for every agent."""
    return ["-m", "prefect_storage.cli", "execute", run_id]


def runs_in_image(record: FlowRecord) -> bool:
    """Whether the flow of ``record`` lives inside an image (only a Docker agent runs it)."""
    try:
        return backend_class(record.storage.get("type", "")).runs_in_image
    except StorageConfigError:  # an unknown type: the run's own process reports it
        return False


class _Wakeup:
    """Wakes the agent's main loop. ``notify`` takes no lock, so a signal handler may call it
    (an ``Event.set`` there can deadlock on the lock the interrupted code holds)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def notify(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"\0")

    def wait(self, timeout: float | None) -> None:
        with contextlib.suppress(InterruptedError):
            select.select([self._read], [], [], timeout)
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


class _RegistryOutage:
    """Tracks one outage of the registry: a warning when it starts, a line when it ends,
    and the backoff delay before each retry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._failures = 0
        self.ended_at = float("-inf")
        """When (``time.monotonic()``) the last outage ended."""

    def failed(self, exc: Exception) -> float:
        """Record a failed registry call; returns how long to wait before the next."""
        with self._lock:
            if self._since is None:
                self._since = time.monotonic()
                logger.warning(
                    "The flow registry is unreachable (%s); retrying with backoff (up to "
                    "%.0f s apart) until it answers",
                    exc,
                    MAX_BACKOFF_SECONDS,
                )
            self._failures += 1
            delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (self._failures - 1))
        return delay * random.uniform(0.5, 1.0)  # jitter: agents do not retry in lockstep

    def succeeded(self) -> None:
        if self._since is None:
            return
        with self._lock:
            if self._since is not None:
                logger.info(
                    "The flow registry is reachable again after %.1f s",
                    time.monotonic() - self._since,
                )
                self._since = None
                self._failures = 0
                self.ended_at = time.monotonic()


@dataclass
class _Held:
    """A run this agent holds, and how to stop its process once launched."""

    run: FlowRunRecord
    stop_reason: str | None = None
    terminate: Callable[[], None] | None = None
    kill: Callable[[], None] | None = None
    stopping: bool = False
    exited: threading.Event = field(default_factory=threading.Event)


class Agent(ABC):
    """Polls the registry and runs claimed flow runs with :meth:`_launch`.

    The agent's labels are ``labels`` plus this host's name (unless
    ``hostname_label=False``); it takes only runs whose labels are all among them. See the
    module docstring for leases, stopping and registry outages.
    """

    kind = "agent"

    def __init__(
        self,
        labels: list[str] | None = None,
        registry: FlowRegistry | None = None,
        name: str | None = None,
        hostname_label: bool = True,
        concurrency: int = 1,
        lease_seconds: float | None = None,
        grace_seconds: float = STOP_GRACE_SECONDS,
    ) -> None:
        if concurrency < 1:
            raise SettingError("`concurrency` must be at least 1")
        if lease_seconds is not None and not lease_seconds > 0:
            raise SettingError("`lease_seconds` must be a positive number of seconds")
        if not grace_seconds >= 0:
            raise SettingError("`grace_seconds` must be zero or more seconds")
        host = {socket.gethostname()} if hostname_label else set()
        self.registry = registry or FlowRegistry()
        self.labels = sorted(set(labels or ()) | host)
        self.name = name or f"{self.kind}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds or lease_seconds_from_env()
        self.grace_seconds = grace_seconds
        self.stop_reason: str | None = None
        """Why the last :meth:`start` or :meth:`run_once` stopped early (e.g. "SIGTERM")."""
        self.stopped_runs: list[str] = []
        """The runs the agent ended ``Failed`` because it was stopped while they ran."""
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._force = False
        self._outage = _RegistryOutage()
        self._giving_up = threading.Event()
        self._heartbeat_stop = threading.Event()
        self._wakeup: _Wakeup | None = None
        self._started_at = datetime.now(timezone.utc)

    # -- public ---------------------------------------------------------------------------
    def run_once(self) -> list[str]:
        """Claim and execute runs until none is left for this agent; returns their ids.

        An unreachable registry raises :class:`RegistryUnavailableError` unless runs are
        in flight (then their ends are recorded once it answers again)."""
        return self._serve(poll_interval=None)

    def start(self, poll_interval: float = 2.0) -> None:
        """Run until stopped (SIGINT, SIGTERM or :meth:`stop`), polling every
        ``poll_interval`` seconds; on return :attr:`stop_reason` says why."""
        if not poll_interval > 0:
            raise SettingError("`poll_interval` must be a positive number of seconds")
        self._serve(poll_interval)

    def stop(self, reason: str = "stop requested") -> None:
        """Ask a running :meth:`start`/:meth:`run_once` to stop (safe in a signal handler:
        no lock, no logging). A second call kills the runs' processes without grace."""
        if self.stop_reason is None:
            self.stop_reason = reason
        else:
            self._force = True
        if self._wakeup is not None:
            self._wakeup.notify()

    # -- the loop -------------------------------------------------------------------------
    def _serve(self, poll_interval: float | None) -> list[str]:
        """Poll and run claimed runs; ``poll_interval=None``: until none is left."""
        self.stop_reason, self._force, self.stopped_runs = None, False, []
        self._giving_up.clear()
        self._heartbeat_stop.clear()
        self._wakeup = _Wakeup()
        self._started_at = datetime.now(timezone.utc)
        done: list[str] = []
        previous_handlers = self._install_signal_handlers()
        heartbeat = threading.Thread(
            target=self._heartbeat_loop, name=f"{self.name}-heartbeat", daemon=True
        )
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=self.name)
        registered = False
        try:
            while self.stop_reason is None:
                free = self.concurrency - len(self._held)
                claimed: list[FlowRunRecord] = []
                if free > 0:
                    try:
                        if not registered:
                            self.registry.record_agent(
                                self.name, self.kind, self.labels, self._started_at
                            )
                            registered = True
                            heartbeat.start()
                            logger.info("Agent %s started with labels %s", self.name, self.labels)
                        self._renew_own_then_reap()
                        claimed = self.registry.claim_flow_runs(
                            self.labels, self.name, limit=free, lease_seconds=self.lease_seconds
                        )
                    except RegistryUnavailableError as exc:
                        if poll_interval is None and not self._held:
                            raise  # one pass (cron, CI): say so now rather than wait
                        self._wakeup.wait(self._outage.failed(exc))
                        continue
                    self._outage.succeeded()
                for run in claimed:
                    with self._lock:
                        self._held[run.id] = _Held(run)
                    pool.submit(self._execute_held, run)
                    done.append(run.id)
                if poll_interval is None and not claimed and not self._held:
                    break
                if claimed and len(self._held) < self.concurrency:
                    continue  # more may be waiting: claim again at once
                # A finishing run wakes the loop (a free slot); so does a stop request.
                self._wakeup.wait(1.0 if poll_interval is None else poll_interval)
        finally:
            self._shut_down(pool, heartbeat, registered)
            self._restore_signal_handlers(previous_handlers)
            self._wakeup.close()
            self._wakeup = None
        return done

    def _shut_down(
        self, pool: ThreadPoolExecutor, heartbeat: threading.Thread, registered: bool
    ) -> None:
        """Stop every held run's process (if stopping early), wait for the runs to be
        recorded, stop the heartbeat and remove the agent's row."""
        assert self._wakeup is not None
        reason = self.stop_reason or ("agent error" if self._held else None)
        if reason is not None and self._held:
            logger.warning(
                "Agent %s stopping (%s): stopping %d flow run(s)",
                self.name,
                reason,
                len(self._held),
            )
            for run_id in list(self._held):
                self._request_stop(run_id, reason)
        deadline = time.monotonic() + self.grace_seconds + FINALISE_SECONDS
        while self._held and (reason is None or time.monotonic() < deadline):
            self._wakeup.wait(0.5)
        self._giving_up.set()  # a run still recording its state during an outage stops trying
        pool.shutdown(wait=True)
        self._heartbeat_stop.set()
        if heartbeat.is_alive():
            heartbeat.join()
        if registered:
            try:
                self.registry.remove_agent(self.name)
            except RegistryUnavailableError as exc:
                logger.warning("Agent %s could not remove its registry row: %s", self.name, exc)
        if self.stop_reason is not None:
            logger.info("Agent %s stopped (%s)", self.name, self.stop_reason)

    def _renew_own_then_reap(self) -> None:
        """Reap runs whose agent was lost, but never our own: after an outage longer than
        the lease, our leases look expired until renewed, so renew them first; and reap
        nothing for a lease period after an outage, so other agents can renew theirs."""
        with self._lock:
            run_ids = list(self._held)
        if run_ids:
            self.registry.renew_leases(run_ids, self.lease_seconds, agent=self.name)
        if time.monotonic() - self._outage.ended_at >= self.lease_seconds:
            self.registry.expire_leases()

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}  # only the main thread may set handlers; the caller stops us then

        def on_signal(signum: int, _frame: object) -> None:
            self.stop(signal.Signals(signum).name)

        return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    # -- heartbeat, cancel and stop -------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        while not self._heartbeat_stop.wait(self.lease_seconds / 3):
            self._heartbeat()

    def _heartbeat(self) -> None:
        """Renew the held runs' leases and this agent's row; stop the runs being cancelled."""
        with self._lock:
            run_ids = list(self._held)
        try:
            states = self.registry.renew_leases(run_ids, self.lease_seconds, agent=self.name)
            self.registry.record_agent(self.name, self.kind, self.labels, self._started_at)
        except RegistryUnavailableError as exc:
            self._outage.failed(exc)
            return
        except Exception:  # the heartbeat must outlive any one bad beat
            logger.exception("Agent %s heartbeat failed", self.name)
            return
        self._outage.succeeded()
        for run_id, state in states.items():
            if state == RunState.CANCELLING:
                self._request_stop(run_id, _CANCEL)

    def _request_stop(self, run_id: str, reason: str) -> None:
        """Stop the process of a held run (now if launched, else as soon as it is)."""
        with self._lock:
            held = self._held.get(run_id)
            if held is None or held.stop_reason is not None:
                return
            held.stop_reason = reason
            start = held.terminate is not None and not held.stopping
            held.stopping = held.stopping or start
        if reason == _CANCEL:
            logger.info("Flow run %s: cancel requested; stopping it", run_id)
        if start:
            threading.Thread(target=self._stop_process, args=(held,), daemon=True).start()

    def _attach(self, run_id: str, terminate: Callable[[], None], kill: Callable[[], None]) -> None:
        """For :meth:`_launch`: how to stop the run's process, once it is started."""
        with self._lock:
            held = self._held.get(run_id)
            if held is None:
                return
            held.terminate, held.kill = terminate, kill
            start = held.stop_reason is not None and not held.stopping
            held.stopping = held.stopping or start
        if start:
            threading.Thread(target=self._stop_process, args=(held,), daemon=True).start()

    def _stop_process(self, held: _Held) -> None:
        """SIGTERM, then SIGKILL after the grace period (or at once on a second signal)."""
        assert held.terminate is not None and held.kill is not None
        with contextlib.suppress(Exception):
            held.terminate()
        deadline = time.monotonic() + self.grace_seconds
        while not held.exited.wait(0.1) and time.monotonic() < deadline and not self._force:
            pass
        # Also after a clean exit: whatever the run started in its process group goes too.
        with contextlib.suppress(Exception):
            held.kill()

    # -- one run --------------------------------------------------------------------------
    def _execute_held(self, run: FlowRunRecord) -> None:
        try:
            self.execute(run)
        except Exception:
            logger.exception("Agent %s failed while executing flow run %s", self.name, run.id)
        finally:
            with self._lock:
                held = self._held.pop(run.id, None)
            if held is not None:
                held.exited.set()
            if self._wakeup is not None:
                self._wakeup.notify()

    def execute(self, run: FlowRunRecord) -> None:
        """Launch one claimed run; whatever happens, it ends in a final state."""
        logger.info("Executing flow run %s of %r", run.id, run.flow_name)
        record = self._retrying(
            lambda: self.registry.get_flow(run.flow_name, run.flow_version), "loading the flow"
        )
        refusal = self._refusal(record)
        if refusal:
            self._end(run.id, RunState.FAILED, refusal, expected=RunState.LEASED)
            return
        held = self._held.get(run.id)
        if held is not None and held.stop_reason is not None:
            exit_code: int | str = "not started"
            output = ""
        else:
            try:
                exit_code, output = self._launch(run, record)
            except Exception as exc:
                exit_code, output = f"not started ({type(exc).__name__}: {exc})", ""
        self._finish(run.id, exit_code, output, held.stop_reason if held else None)

    def _finish(self, run_id: str, exit_code: int | str, output: str, reason: str | None) -> None:
        """Record the final state the run's process did not record itself."""
        for _ in range(5):
            state = self._retrying(
                lambda: self.registry.get_flow_run(run_id).state, "reading the run's state"
            )
            if state in RunState.FINAL:
                return
            if state == RunState.CANCELLING or reason == _CANCEL:
                target = RunState.CANCELLED
                message = (
                    f"Cancelled: agent {self.name} stopped the flow run process "
                    f"(exit code {exit_code})."
                )
            elif reason is not None:
                target = RunState.FAILED
                message = f"agent stopped ({reason}) while the run was {state}"
            else:
                target = RunState.FAILED
                message = f"The flow run process exited with code {exit_code} before finishing."
            if self._end(run_id, target, message, output, expected=[state]):
                if reason is not None and reason != _CANCEL:
                    self.stopped_runs.append(run_id)
                return
            # The state changed meanwhile (e.g. a cancel request): decide again.

    def _end(
        self,
        run_id: str,
        state: str,
        message: str,
        output: str = "",
        expected: Any = None,
    ) -> bool:
        tail = "\n".join(output.strip().splitlines()[-20:])
        entry = {
            "timestamp": datetime.now(timezone.utc),
            "level": "INFO" if state == RunState.CANCELLED else "ERROR",
            "logger": logger.name,
            "message": message + (f" Its last output:\n{tail}" if tail else ""),
        }
        self._retrying(lambda: self.registry.add_logs(run_id, [entry]), "logging the run's end")
        return self._retrying(
            lambda: self.registry.set_flow_run_state(
                run_id, state, message=message, expected=expected
            ),
            "recording the run's final state",
        )

    def _retrying(self, operation: Callable[[], T], description: str) -> T:
        """``operation()``, retried with backoff while the registry is unreachable (until
        the agent gives up while stopping)."""
        while True:
            try:
                result = operation()
            except RegistryUnavailableError as exc:
                delay = self._outage.failed(exc)
                if self._giving_up.wait(delay):
                    logger.error("Agent %s gave up %s: %s", self.name, description, exc)
                    raise
                continue
            self._outage.succeeded()
            return result

    def _refusal(self, record: FlowRecord) -> str | None:
        """Why this agent cannot run flows like ``record`` (None when it can)."""
        return None

    def _child_environment(
        self, record: FlowRecord, inherited: Mapping[str, str]
    ) -> dict[str, str]:
        """For :meth:`_launch`: the environment of a run's process: ``inherited``, then where
        the registry and the home folder are and the lease length, then the run config's
        ``env``."""
        environment = dict(inherited)
        environment[REGISTRY_URL_ENV] = self.registry.url
        environment[HOME_ENV] = str(home_dir())
        environment[LEASE_SECONDS_ENV] = repr(self.lease_seconds)
        environment.update(record.run_config.get("env") or {})
        return environment

    @abstractmethod
    def _launch(self, run: FlowRunRecord, record: FlowRecord) -> tuple[int | str, str]:
        """Run ``prefect-storage execute RUN_ID`` somewhere; return (exit code, output).

        Once the process is started, call :meth:`_attach` with how to terminate and kill
        it, so the agent can stop it (cancel, agent stopping).
        """
