from __future__ import annotations

import re
from collections import Counter

import orjson
import pytest

from iterable_simulator import DataSpec, FaultConfig, Simulator, SimulatorConfig, timefmt

from .conftest import NOW

DAY = 86400.0
USUAL = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+00:00$")
NO_COLON = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+0000$")
DOUBLE_FRACTION = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\.000Z$")


def _sim(**kwargs) -> Simulator:
    data = kwargs.pop("data", DataSpec(now=NOW))
    return Simulator(SimulatorConfig(data=data, **kwargs))


def test_same_seed_same_data_other_seed_different():
    a, b, c = _sim(seed=5), _sim(seed=5), _sim(seed=6)
    for kind in ("campaigns", "users", "events:emailSend", "templates", "list_users"):
        assert a.records(kind) == b.records(kind)
    assert a.records("events:emailSend") != c.records("events:emailSend")


def test_export_timestamps_vary_like_iterable_and_stay_in_history():
    sim = _sim(data=DataSpec(now=NOW, events={"emailSend": 3000}))
    created = [r["createdAt"] for r in sim.records("events:emailSend")]
    kinds = Counter(
        "usual"
        if USUAL.match(s)
        else "no_colon"
        if NO_COLON.match(s)
        else "double"
        if DOUBLE_FRACTION.match(s)
        else "?"
        for s in created
    )
    assert kinds["?"] == 0 and kinds["no_colon"] > 0 and kinds["double"] > 0
    assert kinds["usual"] > 0.9 * len(created)
    assert all(NOW - 30 * DAY <= timefmt.parse(s) < NOW for s in created)
    for campaign in sim.records("campaigns"):
        assert NOW - 30 * DAY <= campaign["createdAt"] / 1000 < NOW


@pytest.mark.parametrize("project_type", ["Email-based", "UserID-based", "Hybrid"])
def test_identity_fields_follow_project_type(project_type):
    sim = _sim(project_type=project_type)
    users = sim.records("users")
    events = sim.records("events:emailOpen")
    if project_type == "Email-based":
        assert all("email" in u and "itblUserId" not in u and "emailListIds" in u for u in users)
        assert all("email" in e for e in events)
    else:
        assert all("itblUserId" in u and "userListIds" in u for u in users)
        assert len({u["itblUserId"] for u in users}) == len(users)
    if project_type == "UserID-based":
        assert any("email" not in e for e in events)
    if project_type == "Hybrid":
        assert any("userId" not in u for u in users) and any("email" not in u for u in users)
    assert any("itblInternal.emailDomain" in u for u in users)


def test_event_shapes():
    sim = _sim()
    send = sim.records("events:emailSend")[0]
    assert isinstance(send["itblInternal"], dict) and {"messageId", "campaignId", "templateId"} <= set(send)
    assert any(isinstance(r.get("transactionalData"), str) for r in sim.records("events:emailSend"))
    assert all("eventName" in r for r in sim.records("events:customEvent"))
    purchase = sim.records("events:purchase")[0]
    assert purchase["items"] and purchase["total"] > 0


def test_late_fraction_delays_visibility():
    sim = _sim(
        data=DataSpec(now=NOW, late_fraction=1.0, late_delay_s=10 * DAY, events={"emailOpen": 200}),
        clock=lambda: NOW,
    )
    visible = sim.visible_records("events:emailOpen")
    assert 0 < len(visible) < len(sim.records("events:emailOpen"))
    assert len(sim.visible_records("events:emailOpen", at=NOW + 11 * DAY)) == 200


def test_mutations():
    sim = _sim(clock=lambda: NOW)
    campaign = sim.records("campaigns")[0]
    before = campaign["updatedAt"]
    sim.update_campaign(campaign["id"], campaignState="Finished")
    assert campaign["campaignState"] == "Finished" and campaign["updatedAt"] == before
    user = sim.records("users")[0]
    updated = sim.update_user(user["email"], {"plan": "gold"})
    assert updated["plan"] == "gold" and timefmt.parse(updated["profileUpdatedAt"]) == NOW
    assert user not in sim.records("users") and updated in sim.records("users")
    channel = sim.records("channels")[0]
    sim.remove("channels", channel["id"])
    assert channel not in sim.records("channels")
    with pytest.raises(ValueError):
        sim.add_event("notAType", {})


def test_same_second_update_visible_late():
    now = [NOW]
    sim = _sim(
        clock=lambda: now[0], faults=FaultConfig(same_second_update_rate=1.0, same_second_update_delay_s=600)
    )
    user = sim.records("users")[0]
    first = sim.update_user(user["email"], {"plan": "gold"})
    window = (NOW - 1, NOW + 1)
    assert sim.export_ground_truth("user", *window) == [first]
    assert sim.visible_records("users").count(first) == 1 and user not in sim.visible_records("users")

    now[0] = NOW + 600
    [second] = sim.export_ground_truth("user", *window)
    assert second == {**first, "sameSecondRevision": 1}, "the second version differs only in content"
    assert second["profileUpdatedAt"] == first["profileUpdatedAt"]
    assert first not in sim.visible_records("users") and sim.records("users") == sim.visible_records("users")
    assert [f["fault"] for f in sim.injected_faults] == ["same_second_update"]


def test_updates_are_exported_as_their_previous_version_until_visible():
    now = [NOW]
    sim = _sim(clock=lambda: now[0])
    user = sim.records("users")[0]
    updated = sim.update_user(user["email"], {"plan": "gold"}, visible_after_s=60)
    assert user in sim.visible_records("users") and updated not in sim.visible_records("users")
    now[0] = NOW + 60
    assert user not in sim.visible_records("users") and updated in sim.visible_records("users")


def test_light_users_hold_only_their_instants_and_export_like_full_ones():
    spec = DataSpec(
        now=NOW, users=5_000, light_users=True, history_days=1095, events={}, lists=0, late_fraction=0.0
    )
    sim = _sim(data=spec)
    users = sim.data.users
    assert len(users) == 5_000 and users.cursors.itemsize * len(users.cursors) == 40_000
    cursors = [u.cursor for u in users[:]]
    assert cursors == sorted(cursors) and NOW - 1095 * DAY <= cursors[0] and cursors[-1] < NOW
    assert users[-1].data == users[len(users) - 1].data and users[7].data["email"] == "user7@light.test"
    assert timefmt.parse(users[7].data["profileUpdatedAt"]) == users[7].cursor
    # An export window selects exactly the users updated inside it.
    start, end = NOW - 400 * DAY, NOW - 100 * DAY
    exported = sim.export_ground_truth("user", start, end)
    assert len(exported) == sum(1 for c in cursors if start <= c < end) > 0
    assert _sim(data=spec).records("users") == sim.records("users")
    # Export jobs read light users' lines directly, the same records without building them.
    assert [orjson.loads(line) for line in users.export_lines(start, end, NOW)] == exported
