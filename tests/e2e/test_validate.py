"""validate: a good key, an unreachable host. Bad keys and bad input: test_bad_input.py."""

import pytest

from .conftest import bindings, driver


@pytest.mark.asyncio
async def test_good_key_validates(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim)
    result = await d.validate(await bindings(d, ["channels", "events", "users"]))
    assert result.rc == 0, result.error
    response = result.raise_for_error("validate")
    assert [b["resourcePath"] for b in response["validated"]["bindings"]] == [
        ["channels"],
        ["events"],
        ["users"],
    ]


@pytest.mark.asyncio
async def test_unreachable_host(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim, base_url="http://127.0.0.1:9")
    result = await d.validate([])
    assert result.rc == 1
    assert result.error is not None and result.error.startswith(
        "Could not reach Iterable at http://127.0.0.1:9"
    )
