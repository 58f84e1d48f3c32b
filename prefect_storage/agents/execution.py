"""Execute one flow run (in the fresh process an agent starts): load, verify, run, record;
and :func:`run_stored_flow`, the loading and running that ``execute --flow`` shares."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from ..engine.context import context
from ..engine.runner import FlowRunner
from ..exceptions import RegistryUnavailableError
from ..registry import FlowRegistry, RunState, lease_seconds_from_env
from ..secrets import redact_urls

if TYPE_CHECKING:
    from ..engine.flow import Flow
    from ..engine.state import State

T = TypeVar("T")

FINAL_STATE_RETRY_SECONDS = 120.0
"""How long a run's process keeps trying to record its final state while the registry is
unreachable (after that its agent records the exit)."""

logger = logging.getLogger("prefect_storage.execute")


class RegistryLogHandler(logging.Handler):
    """Writes each log record of a flow run to the registry as it comes.

    Not batched: a run whose process dies must keep every line logged before.
    """

    def __init__(self, registry: FlowRegistry, run_id: str) -> None:
        super().__init__(level=logging.INFO)
        self.registry = registry
        self.run_id = run_id

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_urls(message),
        }
        try:
            self.registry.add_logs(self.run_id, [entry])
        except Exception:  # losing a log line must not fail the run
            self.handleError(record)


class LeaseKeeper(threading.Thread):
    """Renews a run's lease from the run's own process every third of the lease, so a run
    whose agent died while this process lives on is not reaped as lost; calls ``on_cancel``
    (if given) when the run is asked to cancel."""

    def __init__(
        self,
        registry: FlowRegistry,
        run_id: str,
        lease_seconds: float,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name=f"lease-{run_id}", daemon=True)
        self.registry = registry
        self.run_id = run_id
        self.lease_seconds = lease_seconds
        self.on_cancel = on_cancel
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.lease_seconds / 3):
            try:
                state = self.registry.renew_leases([self.run_id], self.lease_seconds).get(
                    self.run_id
                )
            except Exception:  # an outage: the next beat tries again; the agent renews too
                continue
            if state == RunState.CANCELLING and self.on_cancel is not None:
                logger.warning("Flow run %s was cancelled; stopping its process", self.run_id)
                self.on_cancel()
                return

    def stop(self) -> None:
        self._done.set()


def run_stored_flow(
    payload: dict[str, Any],
    flow_name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    expected_sha256: str | None = None,
    flow_run_id: str | None = None,
) -> tuple[Flow, State]:
    """Load flow ``flow_name`` from the serialized storage ``payload`` and run it here.

    The storage's secrets are resolved first and are in the run's context while the flow
    is loaded and run; ``expected_sha256`` refuses a flow whose stored bytes differ;
    ``flow_run_id`` names the run in its context (else the run gets a fresh id). Loading
    errors raise; a failing task does not (it is in the returned state).
    """
    from ..backends.base import Storage
    from ..secrets import resolve_secrets

    storage = Storage.deserialize(payload)
    run_context = {"flow_run_id": flow_run_id} if flow_run_id else {}
    with context(secrets=resolve_secrets(storage.secrets), **run_context):
        flow = storage.get_flow(flow_name, expected_sha256=expected_sha256)
        return flow, FlowRunner(flow).run(parameters=parameters, context=run_context)


def execute_flow_run(
    run_id: str,
    registry: FlowRegistry | None = None,
    on_cancel: Callable[[], None] | None = None,
) -> bool:
    """Run flow run ``run_id`` to a final state; returns whether it succeeded.

    Every failure (storage, secrets, digest, the flow itself) ends the run ``Failed``
    with the reason, logged and recorded. While it runs, its lease is renewed from this
    process; ``on_cancel`` is called if it is cancelled meanwhile (the CLI exits). A run
    that is no longer Scheduled or Claimed (cancelled, or already started) is not run.
    """
    registry = registry or FlowRegistry()
    handler = RegistryLogHandler(registry, run_id)
    package_logger = logging.getLogger("prefect_storage")
    package_logger.addHandler(handler)
    previous_level = package_logger.level
    if package_logger.getEffectiveLevel() > logging.INFO:
        package_logger.setLevel(logging.INFO)
    keeper = LeaseKeeper(registry, run_id, lease_seconds_from_env(), on_cancel)
    try:
        run = registry.get_flow_run(run_id)
        record = registry.get_flow(run.flow_name, run.flow_version)
        if not registry.set_flow_run_state(
            run_id, RunState.RUNNING, expected=[RunState.SCHEDULED, RunState.CLAIMED]
        ):
            current = registry.get_flow_run(run_id).state
            logger.warning("Flow run %s is %s: not running it", run_id, current)
            return False
        keeper.start()
        not_final = [RunState.SCHEDULED, *RunState.LEASED]
        try:
            logger.info(
                "Loading flow %r version %d from %s storage (sha256 %s)",
                record.name,
                record.version,
                record.storage.get("type"),
                record.sha256,
            )
            flow, state = run_stored_flow(
                record.storage,
                record.name,
                run.parameters,
                expected_sha256=record.sha256,
                flow_run_id=run_id,
            )
        except Exception as exc:
            message = f"Failed to load and execute flow run: {exc}"
            logger.error(message)
            _retry_while_unreachable(
                lambda: registry.set_flow_run_state(
                    run_id, RunState.FAILED, message=message, expected=not_final
                )
            )
            return False
        task_states = {
            flow.slugs.get(task, task.name): {
                "task": task.name,
                "state": type(task_state).__name__,
                "message": task_state.message,
                "result": _summary(task_state.result),
                "location": task_state.location,
            }
            for task, task_state in state.result.items()
        }
        final = RunState.SUCCESS if state.is_successful() else RunState.FAILED
        _retry_while_unreachable(
            lambda: registry.set_flow_run_state(
                run_id, final, message=state.message, task_states=task_states, expected=not_final
            )
        )
        return state.is_successful()
    finally:
        keeper.stop()
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)


def _retry_while_unreachable(operation: Callable[[], T]) -> T:
    """A final state matters most: keep trying through a short registry outage."""
    deadline = time.monotonic() + FINAL_STATE_RETRY_SECONDS
    delay = 0.25
    while True:
        try:
            return operation()
        except RegistryUnavailableError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)  # backoff between attempts, not a synchronisation
            delay = min(delay * 2, 5.0)


def _summary(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
