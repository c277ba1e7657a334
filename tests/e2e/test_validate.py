"""validate: a good key, a bad key (clear error, no key in any output), an unreachable host."""

import pytest

from flow_driver import ConnectorDriver, validate_binding

from .conftest import ROOT, bindings, driver, endpoint_config


@pytest.mark.asyncio
async def test_good_key_validates(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim)
    result = await d.validate(await bindings(d, ["channels", "events", "users"]))
    assert result.rc == 0, result.error
    assert [b["resourcePath"] for b in result.response["validated"]["bindings"]] == [["channels"], ["events"], ["users"]]


@pytest.mark.asyncio
async def test_bad_key_is_rejected_without_leaking_it(simulator_factory) -> None:
    sim = await simulator_factory()
    wrong_key = "wrong-key-that-must-not-leak-42"
    config = endpoint_config(sim)
    config["credentials"]["access_token"] = wrong_key
    d = ConnectorDriver(
        config, cwd=str(ROOT), env={"ITERABLE_API_BASE_URL": sim.base_url}, secrets=[wrong_key, sim.api_key]
    )
    result = await d.validate([])
    assert result.rc == 1
    assert result.error.startswith("Invalid credentials: Iterable rejected the API key")
    assert "BadApiKey" in result.error and "data center" in result.error


@pytest.mark.asyncio
async def test_unreachable_host(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim, base_url="http://127.0.0.1:9")
    result = await d.validate([])
    assert result.rc == 1
    assert result.error.startswith("Could not reach Iterable at http://127.0.0.1:9")


@pytest.mark.asyncio
async def test_unknown_binding_is_named(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim)
    binding = {
        "collection": {"name": "acmeCo/x", "key": ["/id"], "writeSchema": {}},
        "resourceConfig": {"name": "campaign_spam", "interval": "PT5M"},
    }
    result = await d.validate([validate_binding(binding)])
    assert result.rc == 1
    assert "Resource 'campaign_spam' was not found." in result.error
