"""Event types generated lazily: the dense window's emailOpen events, and their exports."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from iterable_simulator import DataSpec, FaultConfig, Simulator, SimulatorConfig, timefmt
from iterable_simulator.large import install_email_opens
from iterable_simulator.streams import EmailOpens

from . import exporting as ex
from .conftest import NOW, FakeClock

COUNT = 20_000
ENGAGEMENT_FIELDS = [
    "messageId",
    "campaignId",
    "templateId",
    "ip",
    "userAgent",
    "userAgentDevice",
    "city",
    "region",
    "country",
]


def _data(events: dict[str, int] | None = None) -> DataSpec:
    return DataSpec(now=NOW, history_days=1, events=events or {}, users=50, campaigns=10, late_fraction=0.0)


def _opens(seed: int = 7, project_type: str = "Email-based", count: int = COUNT) -> EmailOpens:
    sim = Simulator(SimulatorConfig(seed=seed, project_type=project_type, data=_data(), clock=FakeClock()))
    return install_email_opens(sim, count)


def test_same_seed_same_records_other_seed_other_records() -> None:
    first, again, other = _opens(), _opens(), _opens(seed=8)
    assert [first.line(i) for i in range(0, COUNT, 97)] == [again.line(i) for i in range(0, COUNT, 97)]
    assert first.line(0) != other.line(0)


@pytest.mark.parametrize("project_type", ["Email-based", "UserID-based", "Hybrid"])
def test_each_line_is_its_record_as_orjson_writes_it(project_type: str) -> None:
    stream = _opens(project_type=project_type)
    assert all(stream.line(i) == orjson.dumps(stream.record(i)) for i in range(0, COUNT, 7))
    assert all(stream.line_size(i) == len(stream.line(i)) for i in range(0, COUNT, 7))


def test_prerendered_lines_are_the_rendered_ones() -> None:
    stream, rendered = _opens(), _opens()
    rendered.prerender()
    sample = range(0, COUNT, 13)
    assert [rendered.line(i) for i in sample] == [stream.line(i) for i in sample]
    assert [rendered.line_size(i) for i in sample] == [stream.line_size(i) for i in sample]
    assert rendered.line(COUNT - 1) == stream.line(COUNT - 1)


def test_records_are_shaped_as_the_generators() -> None:
    generated = Simulator(SimulatorConfig(seed=7, data=_data({"emailOpen": 2_000}), clock=FakeClock()))
    stream = _opens()
    for records in ([s.data for s in generated.data.events["emailOpen"]], [s.data for s in stream[:2_000]]):
        identity = {"email", "userId"}
        assert {tuple(r) for r in records} == {
            (*fields, "createdAt", *ENGAGEMENT_FIELDS) for fields in (("email",), ("email", "userId"))
        }
        assert all(set(r).issubset(identity | {"createdAt", *ENGAGEMENT_FIELDS}) for r in records)
    users = {s.data["email"]: s.data for s in generated.data.users}
    campaigns = {(c["id"], c["templateId"]) for c in generated.data.campaigns.values()}
    for r in stream[:2_000]:
        user = users[r.data["email"]]
        assert r.data.get("userId") == user.get("userId")
        assert (r.data["campaignId"], r.data["templateId"]) in campaigns


def test_created_at_variants_and_their_instants() -> None:
    stream = _opens()
    formats = {"fraction": 0, "+0000": 0, "+00:00": 0}
    for i in range(COUNT):
        created = stream.record(i)["createdAt"]
        formats["fraction" if "T" in created else "+0000" if created.endswith("+0000") else "+00:00"] += 1
        assert timefmt.parse(created) == pytest.approx(stream.exact(i), abs=1e-6)
        assert stream.cursor(i) <= stream.exact(i) < stream.cursor(i) + 1
    assert 0 < formats["fraction"] < 0.01 * COUNT < formats["+0000"] < 0.1 * COUNT


def test_count_and_span() -> None:
    stream = _opens()
    assert len(stream) == len(list(stream)) == COUNT
    assert NOW - 86_400 - 1 <= stream.cursor(0) and stream.cursor(COUNT - 1) < NOW - 1
    assert all(stream.cursor(i) <= stream.cursor(i + 1) for i in range(COUNT - 1))


@pytest.mark.parametrize(
    "start,end,at",
    [
        (None, None, NOW),
        (NOW - 50_000.5, NOW - 20_000.25, NOW),
        (NOW - 60_000, NOW - 59_990, NOW),
        (NOW - 60_000.7, NOW - 60_000.2, NOW),
        (None, NOW, NOW - 40_000.5),
    ],
)
def test_window_is_what_the_records_instants_say(start: float | None, end: float | None, at: float) -> None:
    stream = _opens()
    expected = [
        i
        for i in range(COUNT)
        if (start is None or start <= stream.exact(i))
        and (end is None or stream.exact(i) < end)
        and stream.exact(i) <= at
    ]
    assert stream.window(start, end, at) == expected


@pytest.mark.asyncio
async def test_export_serves_the_window_rendered_on_download(make_client: Any) -> None:
    clock = FakeClock()
    c = await make_client(seed=7, clock=clock, data=_data(), export_records_per_file=1_000)
    stream = install_email_opens(c.sim, COUNT)
    lo, hi = NOW - 60_000, NOW - 30_000
    job_id = await ex.start(c, "emailOpen", start=lo, end=hi)
    job = c.sim.exports.jobs[job_id]
    assert not isinstance(job.files[0].lines, list)  # nothing rendered before the download
    await ex.wait_completed(c, clock, job_id)
    names, lines = await ex.read_all(c, job_id)
    expected = [s.data for s in stream if lo <= s.cursor < hi]
    assert job.record_count == len(lines) == len(expected) > 0 and len(names) == -(-len(lines) // 1_000)
    assert ex.canon([orjson.loads(line) for line in lines]) == ex.canon(expected)
    assert c.sim.export_ground_truth("emailOpen", lo, hi) == expected
    assert job.bytes_exported() == sum(len(f.body) for f in job.files)
    assert b"".join(line + b"\n" for line in lines) == b"".join(f.body for f in job.files)


@pytest.mark.asyncio
async def test_line_faults_and_field_selection_apply_to_a_lazy_type(make_client: Any) -> None:
    clock = FakeClock()
    faults = FaultConfig(malformed_line_rate=0.5)
    c = await make_client(seed=7, clock=clock, data=_data(), faults=faults)
    install_email_opens(c.sim, 2_000)
    job_id = await ex.start(c, "emailOpen", start=None, end=None, onlyFields="email,createdAt")
    await ex.wait_completed(c, clock, job_id)
    _, lines = await ex.read_all(c, job_id)
    assert len(lines) == 2_000
    parsed = []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    assert 0 < len(parsed) < 2_000 and all(set(r) == {"email", "createdAt"} for r in parsed)


def test_a_lazy_type_is_read_only() -> None:
    sim = Simulator(SimulatorConfig(seed=7, data=_data(), clock=FakeClock()))
    install_email_opens(sim, 10)
    with pytest.raises(TypeError, match="read-only"):
        sim.add_event("emailOpen", {"email": "x@example.com"})
