"""Execute one flow run (in the fresh process an agent starts): load, verify, run, record."""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timezone
from typing import Any

from ..engine.context import context
from ..engine.runner import FlowRunner
from ..registry import FlowRegistry, RunState
from ..secrets import redact_urls

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


def execute_flow_run(run_id: str, registry: FlowRegistry | None = None) -> bool:
    """Run flow run ``run_id`` to a final state; returns whether it succeeded.

    Every failure (storage, secrets, digest, the flow itself) ends the run ``Failed``
    with the reason, logged and recorded.
    """
    from ..secrets import resolve_secrets
    from ..storage import Storage

    registry = registry or FlowRegistry()
    handler = RegistryLogHandler(registry, run_id)
    package_logger = logging.getLogger("prefect_storage")
    package_logger.addHandler(handler)
    previous_level = package_logger.level
    if package_logger.getEffectiveLevel() > logging.INFO:
        package_logger.setLevel(logging.INFO)
    try:
        run = registry.get_flow_run(run_id)
        record = registry.get_flow(run.flow_name, run.flow_version)
        registry.set_flow_run_state(run_id, RunState.RUNNING)
        try:
            storage = Storage.deserialize(record.storage)
            secrets = resolve_secrets(storage.secrets)
            with context(secrets=secrets, flow_run_id=run_id):
                logger.info(
                    "Loading flow %r version %d from %s storage (sha256 %s)",
                    record.name,
                    record.version,
                    storage.name,
                    record.sha256,
                )
                flow = storage.get_flow(record.name, expected_sha256=record.sha256)
                state = FlowRunner(flow).run(
                    parameters=run.parameters, context={"flow_run_id": run_id}
                )
        except Exception as exc:
            message = f"Failed to load and execute flow run: {exc}"
            logger.error(message)
            registry.set_flow_run_state(run_id, RunState.FAILED, message=message)
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
        registry.set_flow_run_state(run_id, final, message=state.message, task_states=task_states)
        return state.is_successful()
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)


def _summary(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
