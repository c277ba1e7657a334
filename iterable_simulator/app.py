"""aiohttp routes answering like Iterable's API (iterable-api.md §2-§8)."""

from __future__ import annotations

import asyncio
import csv
import math
import io
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web
from multidict import MultiMapping

from . import responses as r
from . import timefmt
from .data import CAMPAIGN_STATES, METRIC_COLUMNS, TEMPLATE_MEDIUMS, TEMPLATE_TYPES, canonical_data_type
from .exports import ACTIVE_STATES, ExportJob, JobState, RenderedLines
from .faults import Fault
from .limits import bucket_for
from .state import SimulatorState

SIM: web.AppKey[SimulatorState] = web.AppKey("simulator")
LOG_ENTRY: web.RequestKey[dict[str, Any]] = web.RequestKey("log_entry", dict)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TEMPLATES_PAGE = (20, 1000)  # (default, max) pageSize
CAMPAIGNS_PAGE = (20, 1000)
JOURNEYS_PAGE = (10, 50)
CATALOGS_PAGE = (10, 1000)
MAX_REPEATED_PARAM = 100  # more repetitions than this and the URL is too long -> 414
MAX_QUERY_CHARS = 8000
# Both metrics endpoints document these defaults for a missing startDateTime and endDateTime.
METRICS_DEFAULT_WINDOW = ("2018-06-25", "2018-07-25")
EXPORT_FORMAT = "application/x-json-stream"
EMPTY_LINE_RATE = 0.03
STREAMED_LINES = 500  # lines rendered per write of a lazily generated export file


def build_app(sim: SimulatorState) -> web.Application:
    app = web.Application(middlewares=[_middleware])
    app[SIM] = sim
    get = app.router.add_get
    get("/api/channels", _snapshot("channels", "channels"), allow_head=False)
    get("/api/messageTypes", _snapshot("messageTypes", "message_types"), allow_head=False)
    get("/api/lists", _snapshot("lists", "lists"), allow_head=False)
    get("/api/metadata", _snapshot("results", "metadata_tables"), allow_head=False)  # key is `results`
    get("/api/snippets", _snapshot("snippets", "snippets"), allow_head=False)
    get("/api/templates", _templates, allow_head=False)
    get("/api/campaigns", _campaigns, allow_head=False)
    get("/api/campaigns/metrics", _campaign_metrics, allow_head=False)
    get("/api/campaigns/recurring/{id}/childCampaigns", _child_campaigns, allow_head=False)
    get("/api/campaigns/{id}", _campaign, allow_head=False)
    get("/api/journeys", _journeys, allow_head=False)
    get("/api/catalogs", _catalogs, allow_head=False)
    get("/api/catalogs/{name}/items", _catalog_items, allow_head=False)
    get("/api/users/getFields", _user_fields, allow_head=False)
    get("/api/experiments/metrics", _experiment_metrics, allow_head=False)
    get("/api/lists/getUsers", _list_users, allow_head=False)
    get("/api/lists/previewUsers", _preview_users, allow_head=False)
    get("/api/lists/{id}/size", _list_size, allow_head=False)
    app.router.add_post("/api/export/start", _export_start)
    get("/api/export/jobs", _export_jobs, allow_head=False)
    get("/api/export/{id}/files", _export_files, allow_head=False)
    app.router.add_delete("/api/export/{id}", _export_cancel)
    get("/_files/{id}/{name}", _export_file, allow_head=False)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


# -- middleware: log, faults, 414, auth, rate limits ------------------------------------------------
@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sim = request.app[SIM]
    bucket = bucket_for(request.method, request.path, sim.config.export_reading)
    headers = request.headers
    entry: dict[str, Any] = {
        "t": sim.now(),
        "method": request.method,
        "path": request.path,
        "query": list(request.query.items()),
        "status": None,
        "api_key_present": "Api-Key" in headers or "Api_Key" in headers,
        "bucket": bucket,
    }
    request[LOG_ENTRY] = entry
    try:
        response = await _dispatch(request, handler, bucket=bucket, entry=entry)
        entry["status"] = response.status
        return response
    finally:
        sim.record_request(entry)


async def _dispatch(
    request: web.Request, handler: Handler, bucket: str, entry: dict[str, Any]
) -> web.StreamResponse:
    sim = request.app[SIM]
    fault = sim.faults.pick(sim.rng, request.method, request.path)
    if fault is not None:
        entry["fault"] = fault.value
        sim.record_fault(fault.value, {"method": request.method, "path": request.path})
    if fault is not None and fault not in (Fault.DROP, Fault.SLOW, Fault.LOST_500):
        replaced = r.for_fault(fault, sim.config.scaled(sim.faults.retry_after_s))
        if replaced is not None:
            return replaced
    if _uri_too_long(request):
        return r.gateway_html(414)
    if request.path.startswith("/api/") and not _authorised(request):
        return r.bad_api_key()
    refusal = sim.limiter.refusal(bucket, sim.now(), sim.config.enforce_rate_limits)
    if refusal == "other_tool":
        entry["fault"] = "other_tool"
        sim.record_fault("other_tool", {"method": request.method, "path": request.path})
    if refusal is not None:
        return r.rate_limited()
    if fault is Fault.SLOW:
        # Slow to answer, not slow to arrive: the request already counted against its limit.
        await asyncio.sleep(sim.config.scaled(sim.faults.slow_delay_s))
    response = await handler(request)
    if fault is Fault.DROP and isinstance(response, web.Response):
        return await send_partial(request, response)
    if fault is Fault.LOST_500:
        return r.generic_500()
    return response


def _authorised(request: web.Request) -> bool:
    key = request.headers.get("Api-Key") or request.headers.get("Api_Key")
    return key == request.app[SIM].api_key


def _uri_too_long(request: web.Request) -> bool:
    if len(request.query_string) > MAX_QUERY_CHARS:
        return True
    counts = Counter(key for key, _ in request.query.items())
    return any(n > MAX_REPEATED_PARAM for n in counts.values())


async def send_partial(
    request: web.Request, response: web.Response, fraction: float = 0.5
) -> web.StreamResponse:
    """Announce the full body, send part of it, then drop the connection."""
    body = response.body if isinstance(response.body, bytes) else b""
    partial = web.StreamResponse(status=response.status)
    partial.content_type = response.content_type
    partial.content_length = len(body)
    await partial.prepare(request)
    await partial.write(body[: int(len(body) * fraction)])
    if request.transport is not None:
        request.transport.abort()
    return partial


async def _not_found(request: web.Request) -> web.Response:
    return r.not_found()


# -- small resources ----------------------------------------------------------------------------------
def _snapshot(key: str, kind: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return r.json_response({key: request.app[SIM].records(kind)})

    return handler


class BadRequest(Exception):
    pass


def _int_param(query: MultiMapping[str], name: str, default: int | None = None) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid value for {name}: {raw!r}") from None


def _page_params(query: MultiMapping[str], limits: tuple[int, int]) -> tuple[int, int] | None:
    """(page, pageSize), or None for the deprecated unpaged mode (no paging params at all)."""
    if "page" not in query and "pageSize" not in query:
        return None
    page = _int_param(query, "page", 1) or 1
    size = _int_param(query, "pageSize", limits[0]) or limits[0]
    if page < 1 or size < 1 or size > limits[1]:
        raise BadRequest(f"page must be >= 1 and pageSize between 1 and {limits[1]}")
    return page, size


def _page_urls(request: web.Request, page: int, size: int, total: int) -> dict[str, str]:
    sim = request.app[SIM]
    others = [(k, v) for k, v in request.query.items() if k not in ("page", "pageSize")]

    def url(n: int) -> str:
        return f"{sim.base_url}{request.path}?{urlencode([*others, ('page', n), ('pageSize', size)])}"

    out: dict[str, str] = {}
    if page * size < total:
        out["nextPageUrl"] = url(page + 1)
    if page > 1:
        out["previousPageUrl"] = url(page - 1)
    return out


def _sorted(
    items: list[dict[str, Any]], sort: str | None, allowed: tuple[str, ...], id_key: str
) -> list[dict[str, Any]]:
    field = (sort or "id").lstrip("+-")
    if field not in allowed:
        raise BadRequest(f"Invalid sort field {field!r}")
    key = id_key if field == "id" else field
    desc = bool(sort and sort.startswith("-"))
    present = sorted((i for i in items if key in i), key=lambda i: (i[key], i[id_key]), reverse=desc)
    return present + [i for i in items if key not in i]


def _page(request: web.Request, items: Sequence[Any], page: int, size: int) -> Sequence[Any]:
    """One page of a page-number listing; a page after the first may shift (the listing fault)."""
    start = (page - 1) * size
    if page > 1:
        sim = request.app[SIM]
        offset = sim.faults.take_listing_shift(sim.rng, request.path)
        if offset:
            sim.record_fault("listing_shift", {"path": request.path, "page": page, "offset": offset})
            request[LOG_ENTRY]["fault"] = "listing_shift"
            start = max(0, start + offset)
    return items[start : start + size]


def _paged(
    request: web.Request, key: str, total_key: str, items: list[dict[str, Any]], limits: tuple[int, int]
) -> web.Response:
    paging = _page_params(request.query, limits)
    if paging is None:
        return r.json_response({key: items})
    page, size = paging
    body: dict[str, Any] = {key: _page(request, items, page=page, size=size)}
    body.update(_page_urls(request, page, size=size, total=len(items)))
    body[total_key] = len(items)
    return r.json_response(body)


def _handles_bad_request(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadRequest as err:
            return r.bad_params(str(err))

    return wrapped


def _time_filter(query: MultiMapping[str], name: str) -> float | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return timefmt.parse(raw)
    except ValueError:
        raise BadRequest(f"Invalid {name}: {raw!r}") from None


@_handles_bad_request
async def _templates(request: web.Request) -> web.Response:
    sim, q = request.app[SIM], request.query
    ttype, medium = q.get("templateType"), q.get("messageMedium")
    if ttype is not None and ttype not in TEMPLATE_TYPES:
        raise BadRequest(f"Invalid templateType {ttype!r}")
    if medium is not None and medium not in TEMPLATE_MEDIUMS:
        raise BadRequest(f"Invalid messageMedium {medium!r}")
    start, end = _time_filter(q, "startDateTime"), _time_filter(q, "endDateTime")
    items = [
        t
        for (combo_type, combo_medium), templates in sim.data.templates.items()
        if ttype in (None, combo_type) and medium in (None, combo_medium)
        for t in templates
        if (start is None or t["createdAt"] >= start * 1000) and (end is None or t["createdAt"] < end * 1000)
    ]
    items = _sorted(
        items, q.get("sort"), allowed=("id", "name", "createdAt", "updatedAt"), id_key="templateId"
    )
    return _paged(request, "templates", total_key="totalTemplatesCount", items=items, limits=TEMPLATES_PAGE)


def _campaign_listing(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    states = request.query.getall("campaignState", [])
    for state in states:
        if state not in CAMPAIGN_STATES:
            raise BadRequest(f"Invalid campaignState {state!r}")
    if states:
        items = [c for c in items if c["campaignState"] in states]
    items = _sorted(
        items,
        request.query.get("sort"),
        allowed=("id", "name", "createdAt", "updatedAt", "startAt"),
        id_key="id",
    )
    return _paged(request, "campaigns", total_key="totalCampaignsCount", items=items, limits=CAMPAIGNS_PAGE)


@_handles_bad_request
async def _campaigns(request: web.Request) -> web.Response:
    return _campaign_listing(request, request.app[SIM].listed_campaigns())


@_handles_bad_request
async def _child_campaigns(request: web.Request) -> web.Response:
    parent = _path_int(request, "id")
    items = [c for c in request.app[SIM].records("campaigns") if c.get("recurringCampaignId") == parent]
    return _campaign_listing(request, items)


def _path_int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise BadRequest(f"Invalid {name}") from None


@_handles_bad_request
async def _campaign(request: web.Request) -> web.Response:
    campaign = request.app[SIM].data.campaigns.get(_path_int(request, "id"))
    return r.json_response(campaign) if campaign else r.not_found("Campaign not found")


@_handles_bad_request
async def _journeys(request: web.Request) -> web.Response:
    q = request.query
    states = q.getall("state", [])
    items = request.app[SIM].records("journeys")
    # Archived journeys are returned only when asked for explicitly.
    items = [j for j in items if j["isArchived"] == ("Archived" in states)]
    items = _sorted(items, q.get("sort"), allowed=("id", "name", "createdAt", "updatedAt"), id_key="id")
    paging = _page_params(q, JOURNEYS_PAGE) or (1, JOURNEYS_PAGE[0])
    page, size = paging
    body: dict[str, Any] = {
        "journeys": _page(request, items, page=page, size=size),
        "totalJourneysCount": len(items),
    }
    body.update(_page_urls(request, page, size=size, total=len(items)))
    return r.json_response(body)


def _success(params: dict[str, Any]) -> web.Response:
    # The live API wraps catalog payloads as {msg, code: Success, params: {...}}.
    return r.json_response({"msg": "", "code": "Success", "params": params})


@_handles_bad_request
async def _catalogs(request: web.Request) -> web.Response:
    names = [{"name": n} for n in request.app[SIM].data.catalogs]
    page, size = _page_params(request.query, CATALOGS_PAGE) or (1, CATALOGS_PAGE[0])
    params: dict[str, Any] = {
        "catalogNames": _page(request, names, page=page, size=size),
        "totalCatalogsCount": len(names),
    }
    params.update(_page_urls(request, page, size=size, total=len(names)))
    return _success(params)


@_handles_bad_request
async def _catalog_items(request: web.Request) -> web.Response:
    items = request.app[SIM].data.catalogs.get(request.match_info["name"])
    if items is None:
        return r.not_found("Catalog not found")
    page, size = _page_params(request.query, CATALOGS_PAGE) or (1, CATALOGS_PAGE[0])
    params: dict[str, Any] = {
        "catalogItemsWithProperties": _page(request, items, page=page, size=size),
        "totalItemsCount": len(items),
    }
    params.update(_page_urls(request, page, size=size, total=len(items)))
    return _success(params)


async def _user_fields(request: web.Request) -> web.Response:
    return r.json_response({"fields": request.app[SIM].data.user_fields})


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _ids(query: MultiMapping[str], name: str) -> list[int]:
    try:
        return [int(v) for v in query.getall(name, [])]
    except ValueError:
        raise BadRequest(f"Invalid {name}") from None


def _metrics_window(query: MultiMapping[str]) -> tuple[float, float]:
    start = _time_filter(query, "startDateTime")
    end = _time_filter(query, "endDateTime")
    return (
        timefmt.parse(METRICS_DEFAULT_WINDOW[0]) if start is None else start,
        timefmt.parse(METRICS_DEFAULT_WINDOW[1]) if end is None else end,
    )


@_handles_bad_request
async def _campaign_metrics(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    ids = _ids(request.query, "campaignId")
    if not ids:
        raise BadRequest("campaignId is required")
    start, end = _metrics_window(request.query)
    rows = sim.campaign_metrics_rows(start, end)
    launched = [cid for cid in dict.fromkeys(ids) if cid in rows]
    columns = [c for c in METRIC_COLUMNS if any(c in rows[cid] for cid in launched)]
    table = [[str(cid), *(rows[cid].get(c, "") for c in columns)] for cid in launched]
    return r.csv_response(_csv(["id", *columns], table))


@_handles_bad_request
async def _experiment_metrics(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    experiment_ids, campaign_ids = _ids(request.query, "experimentId"), _ids(request.query, "campaignId")
    start, end = _metrics_window(request.query)
    header, table = sim.experiment_metrics_table(experiment_ids, campaign_ids, start=start, end=end)
    return r.csv_response(_csv(header, table))


# -- list membership --------------------------------------------------------------------------------
def _list_id(request: web.Request) -> int:
    list_id = _int_param(request.query, "listId")
    if list_id is None:
        raise BadRequest("listId is required")
    if list_id not in request.app[SIM].data.members:
        raise BadRequest(f"List {list_id} does not exist")
    return list_id


def _member_lines(sim: SimulatorState, list_id: int, prefer_user_id: bool) -> list[str]:
    lines = [sim.data.member_line(m, prefer_user_id) for m in sim.data.members[list_id]]
    sim.rng.shuffle(lines)  # order differs between calls
    out: list[str] = []
    for line in lines:
        if sim.rng.random() < EMPTY_LINE_RATE:
            out.append("")
        out.append(line)
    return out


@_handles_bad_request
async def _list_users(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    list_id = _list_id(request)
    if list_id == sim.failing_list_id:
        return r.generic_500()  # this list fails persistently
    prefer = request.query.get("preferUserId", "").lower() == "true"
    body = "".join(line + "\n" for line in _member_lines(sim, list_id, prefer)).encode()
    response = web.Response(body=body, content_type="text/plain", charset="utf-8")
    if list_id == sim.breaking_list_id and not sim.breaking_list_broken and body:
        sim.breaking_list_broken = True
        sim.record_fault("list_stream_break", {"list_id": list_id})
        request[LOG_ENTRY]["fault"] = "list_stream_break"
        return await send_partial(request, response, fraction=0.4)
    return response


@_handles_bad_request
async def _preview_users(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    list_id = _list_id(request)
    size = _int_param(request.query, "size", 1000) or 1000
    if size > 5000:
        raise BadRequest("size must be <= 5000")
    lines = [line for line in _member_lines(sim, list_id, False) if line][:size]
    return web.Response(text="".join(line + "\n" for line in lines), content_type="text/plain")


@_handles_bad_request
async def _list_size(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    list_id = _path_int(request, "id")
    if list_id not in sim.data.members:
        raise BadRequest(f"List {list_id} does not exist")
    return web.Response(text=str(len(sim.data.members[list_id])), content_type="text/plain")


# -- export API -------------------------------------------------------------------------------------
def _fields(body: dict[str, Any], name: str) -> tuple[str, ...]:
    raw = body.get(name)
    if raw is None:
        return ()
    if not isinstance(raw, str):
        raise BadRequest(f"{name} must be a comma-separated string")
    return tuple(f.strip() for f in raw.split(",") if f.strip())


def _body_time(body: dict[str, Any], name: str) -> float | None:
    raw = body.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BadRequest(f"{name} must be a string")
    try:
        return timefmt.parse(raw)
    except ValueError:
        raise BadRequest(f"Invalid {name} {raw!r}; expected yyyy-MM-dd HH:mm:ss ZZ") from None


async def _export_start(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return r.error(400, "BadJsonBody", "Could not parse JSON body")
    if not isinstance(body, dict):
        return r.error(400, "BadJsonBody", "Expected a JSON object")
    try:
        job = _create_job(sim, body)
    except BadRequest as err:
        return r.bad_params(str(err))
    return r.json_response({"jobId": job.id})


def _create_job(sim: SimulatorState, body: dict[str, Any]) -> ExportJob:
    requested = str(body.get("dataTypeName") or "")
    if requested.lower() in {name.lower() for name in sim.config.export_refused_data_types}:
        raise BadRequest(f"Invalid dataTypeName: {requested}")
    data_type = canonical_data_type(requested)
    if data_type is None:
        raise BadRequest(f"Invalid dataTypeName {body.get('dataTypeName')!r}")
    if body.get("outputFormat") != EXPORT_FORMAT:
        raise BadRequest(f"outputFormat must be {EXPORT_FORMAT} (the simulator serves JSONL only)")
    start, end = _body_time(body, "startDateTime"), _body_time(body, "endDateTime")
    if start is not None and end is not None and start >= end:
        raise BadRequest("startDateTime must be before endDateTime")
    campaign_id = body.get("campaignId")
    if campaign_id is not None and not isinstance(campaign_id, int):
        raise BadRequest("campaignId must be an integer")
    fail, requeue = sim.faults.take_job_fault(sim.rng)
    never_ends = sim.faults.take_never_ending()
    job = sim.exports.create(
        sim.now(),
        data_type=data_type,
        start=start,
        end=end,
        created_by_connector=True,
        campaign_id=campaign_id,
        only_fields=_fields(body, "onlyFields"),
        omit_fields=_fields(body, "omitFields"),
        fail_planned=fail,
        requeue_planned=requeue,
        fixed_duration=math.inf if never_ends else None,
    )
    if sim.faults.take_foreign_start():
        sim.create_foreign_job(data_type, start, end)
    return job


def _visible_job(request: web.Request) -> ExportJob | None:
    sim = request.app[SIM]
    try:
        job_id = int(request.match_info["id"])
    except ValueError:
        return None
    sim.exports.tick(sim.now())
    job = sim.exports.jobs.get(job_id)
    return job if job is not None and job.project_visible else None


async def _export_files(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    job = _visible_job(request)
    if job is None:
        return r.not_found("Export job not found")
    now = sim.now()
    after = request.query.get("startAfter", "")
    files = [f for f in job.files_available(now) if f.name > after][: sim.config.export_files_page_size]
    return r.json_response(
        {
            "jobId": job.id,
            "jobState": job.state.value,
            "exportTruncated": job.truncated and job.state is JobState.COMPLETED,
            "files": [{"file": f.name, "url": sim.issue_file_url(job.id, f.name, now)} for f in files],
        }
    )


async def _export_jobs(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    wanted = request.query.get("jobState")
    sim.exports.tick(sim.now())
    jobs = []
    for job in sim.exports.jobs.values():
        if not job.project_visible or (wanted and job.state.value != wanted.lower()):
            continue
        entry: dict[str, Any] = {
            "id": job.id,
            "dataTypeName": job.data_type,
            "jobState": job.state.value,
            "scheduledStartTime": timefmt.iso_offset_str(job.created_at),
        }
        if job.ended_at is not None:
            entry["endTime"] = timefmt.iso_offset_str(job.ended_at)
        entry["bytesExported"] = job.bytes_exported()
        jobs.append(entry)
    return r.json_response({"jobs": jobs})


async def _export_cancel(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    job = _visible_job(request)
    if job is None:
        return r.not_found("Export job not found")
    sim.exports.cancelled_jobs.append(job.id)
    if job.state not in ACTIVE_STATES:
        return r.bad_params(f"Job {job.id} is {job.state.value} and cannot be cancelled")
    sim.exports.cancel(job, sim.now())
    return r.json_response({"msg": f"Cancelled job {job.id}", "code": "Success", "params": None})


async def _export_file(request: web.Request) -> web.StreamResponse:
    """A pre-signed S3-style download: no Api-Key needed, expires after file_url_expiry_s."""
    sim = request.app[SIM]
    now = sim.now()
    issued = sim.issued_urls.get(request.query.get("X-Amz-Signature", ""))
    job_id, name = request.match_info["id"], request.match_info["name"]
    if issued is None or str(issued.job_id) != job_id or issued.name != name:
        return r.s3_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    if now >= issued.expires_at:
        return r.s3_expired(int(round(issued.expires_at - issued.issued_at)), issued.expires_at, now)
    job = sim.exports.jobs[issued.job_id]
    export_file = next(f for f in job.files if f.name == name)
    if isinstance(export_file.lines, RenderedLines) and "fault" not in request[LOG_ENTRY]:
        return await _stream_rendered(request, export_file.lines, export_file.size)
    return web.Response(body=export_file.body, content_type="application/octet-stream")


async def _stream_rendered(request: web.Request, lines: RenderedLines, size: int) -> web.StreamResponse:
    """A file of lazily generated records, sent as S3 sends: its length first, then its bytes as
    they are rendered (a file being dropped or failed by a fault is sent whole instead)."""
    response = web.StreamResponse()
    response.content_type = "application/octet-stream"
    response.content_length = size
    await response.prepare(request)
    for start in range(0, len(lines), STREAMED_LINES):
        await response.write(b"".join(line + b"\n" for line in lines[start : start + STREAMED_LINES]))
    await response.write_eof()
    return response
