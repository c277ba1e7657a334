"""The users and events bindings: one CDK resource per binding, with three subtasks per export
data type (see `capture`): `realtime.<type>` and `lookback.<type>` incremental, and a backfill."""

import functools
from datetime import datetime, timedelta
from typing import Any, Callable

from estuary_cdk.capture import Task, common
from estuary_cdk.flow import CaptureBinding

from ..config import ConnectorState, EndpointConfig, ResourceConfig
from ..models import key_schemas
from .capture import BackfillPage, ExportCapture, datetime_to_page, now_seconds
from .streams import ExportedStream
from .jobs import ExportJobs

BackfillStart = Callable[[datetime], datetime]
"""Where the backfill of a binding (or data type) created at the given instant starts."""


def realtime_subtask(data_type: str) -> str:
    """The incremental subtask of a data type's real-time pass; its backfill is named `data_type`."""
    return f"realtime.{data_type}"


def lookback_subtask(data_type: str) -> str:
    """The incremental subtask of a data type's late-data pass."""
    return f"lookback.{data_type}"


def _export_subtasks(
    streams: list[ExportedStream], *, cutoff: datetime, lag: timedelta, start: datetime
) -> common.ResourceState:
    """The subtasks of newly captured data types. The backfill's first page is its resolved start,
    checkpointed at the first open, so an empty start date does not move with later restarts."""
    inc: dict[str, common.ResourceState.Incremental | None] = {}
    for stream in streams:
        inc[realtime_subtask(stream.data_type)] = common.ResourceState.Incremental(cursor=cutoff)
        if lag:
            inc[lookback_subtask(stream.data_type)] = common.ResourceState.Incremental(cursor=cutoff - lag)
    backfill: dict[str, common.ResourceState.Backfill | None] = {
        stream.data_type: common.ResourceState.Backfill(cutoff=cutoff, next_page=datetime_to_page(start))
        for stream in streams
    }
    return common.ResourceState(inc=inc, backfill=backfill)


def export_resource(
    *,
    config: EndpointConfig,
    jobs: ExportJobs,
    now: datetime,
    name: str,
    interval: timedelta,
    key: list[str],
    model: type[common.BaseDocument],
    streams: list[ExportedStream],
    backfill_start: BackfillStart,
) -> common.Resource:
    lag = config.advanced.late_data_lag

    async def open(
        binding: CaptureBinding[ResourceConfig],
        binding_index: int,
        state: common.ResourceState,
        task: Task,
        all_bindings: Any,
    ) -> None:
        jobs.stopping = task.stopping.event
        capture = ExportCapture(
            jobs=jobs,
            binding=name,
            initial_window=config.advanced.window_size,
            lag=lag,
            interval=binding.resourceConfig.interval,
            skip_malformed=config.advanced.skip_malformed_records,
            plan=jobs.http.export_plan,
        )
        await _add_missing_subtasks(
            task, binding=binding, state=state, streams=streams, lag=lag, backfill_start=backfill_start
        )
        assert isinstance(state.inc, dict) and isinstance(state.backfill, dict)
        fetch_changes: dict[str, Any] = {}
        fetch_page: dict[str, Any] = {}
        for stream in streams:
            realtime = state.inc[realtime_subtask(stream.data_type)]
            assert realtime and isinstance(realtime.cursor, datetime)
            backfill = state.backfill.get(stream.data_type)
            if backfill is not None:
                backfill.next_page = _dict_page(backfill.next_page)
            capture.track(stream.data_type, realtime.cursor, backfill.next_page if backfill else None)
            fetch_changes[realtime_subtask(stream.data_type)] = functools.partial(capture.realtime, stream)
            if lag:
                fetch_changes[lookback_subtask(stream.data_type)] = functools.partial(
                    capture.lookback, stream
                )
            legacy_start = _start_of_unpaged_backfill(config, state.backfill.get(stream.data_type), now)
            fetch_page[stream.data_type] = functools.partial(capture.backfill, stream, legacy_start)
        task.sourced_schema(binding_index, {"properties": key_schemas(model, key)})
        await task.checkpoint(ConnectorState())
        common.open_binding(
            binding,
            binding_index,
            state,
            task=task,
            fetch_changes=fetch_changes,
            fetch_page=fetch_page,
        )

    return common.Resource(
        name=name,
        key=key,
        model=model,
        open=open,
        initial_state=_export_subtasks(streams, cutoff=now, lag=lag, start=backfill_start(now)),
        initial_config=ResourceConfig(name=name, interval=interval),
        schema_inference=True,
    )


def _dict_page(page: common.PageCursor) -> common.PageCursor:
    """An int page (a start only) as the dict page it stands for: the CDK merges a yielded dict
    page only into a dict. The runtime replaces a checkpointed int with the first dict written."""
    read = BackfillPage.read(page)
    return page if read is None or isinstance(page, dict) else read.model_dump()


def _start_of_unpaged_backfill(
    config: EndpointConfig, backfill: common.ResourceState.Backfill | None, now: datetime
) -> datetime:
    """Where a backfill whose page is still None starts: one a version before the initial page
    carried the start. It keeps the behaviour it was created with, and its empty start date
    resolves from the backfill's own cutoff, which does not move with restarts."""
    cutoff = backfill.cutoff if backfill is not None and isinstance(backfill.cutoff, datetime) else now
    return config.start(cutoff)


async def _add_missing_subtasks(
    task: Task,
    *,
    binding: CaptureBinding[ResourceConfig],
    state: common.ResourceState,
    streams: list[ExportedStream],
    lag: timedelta,
    backfill_start: BackfillStart,
) -> None:
    """Start capturing data types (or the lookback pass) that were enabled after the binding."""
    if not isinstance(state.inc, dict):
        state.inc = {}
    if not isinstance(state.backfill, dict):
        state.backfill = {} if state.backfill is None else state.backfill
    now = now_seconds()
    fresh = _export_subtasks(streams, cutoff=now, lag=lag, start=backfill_start(now))
    assert isinstance(fresh.inc, dict) and isinstance(fresh.backfill, dict)
    new_inc = {k: v for k, v in fresh.inc.items() if k not in state.inc}
    new_types = [s.data_type for s in streams if realtime_subtask(s.data_type) in new_inc]
    new_backfill = {t: fresh.backfill[t] for t in new_types}
    if not new_inc:
        return
    task.log.info("capturing newly enabled export subtasks", {"subtasks": sorted(new_inc)})
    state.inc.update(new_inc)
    assert isinstance(state.backfill, dict)
    state.backfill.update(new_backfill)
    await task.checkpoint(
        ConnectorState(
            bindingStateV1={
                binding.stateKey: common.ResourceState(inc=new_inc, backfill=new_backfill or None)
            }
        )
    )
