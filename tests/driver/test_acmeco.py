import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from .driver_helpers import fake_command
from flow_driver.acmeco import run_acmeco

DISCOVERED = [
    {
        "recommendedName": "users",
        "resourceConfig": {"name": "users"},
        "documentSchema": {
            "type": "object",
            "required": ["email"],
            "properties": {"email": {"type": "string"}},
        },
        "key": ["/email"],
    },
    {
        "recommendedName": "events",
        "resourceConfig": {"name": "events"},
        "documentSchema": {"$defs": {"Meta": {"type": "object"}}, "type": "object", "x-infer-schema": True},
        "key": ["/_estuary_id"],
    },
]


def write_flow(tmp_path: Path, config: dict[str, Any]) -> Path:
    flow = {
        "captures": {
            "acmeCo/source-x": {
                "endpoint": {"local": {"command": ["python"], "config": config}},
                "bindings": [],
            }
        }
    }
    path = tmp_path / "test.flow.yaml"
    path.write_text(yaml.safe_dump(flow, sort_keys=False))
    return path


@pytest.mark.asyncio
async def test_writes_and_checks_the_layout(tmp_path: Path) -> None:
    flow, out = write_flow(tmp_path, {"discover": DISCOVERED}), tmp_path / "acmeCo"
    assert await run_acmeco(flow_file=flow, out=out, command=fake_command()) == 0

    assert (out / "flow.yaml").read_text() == (
        "collections:\n"
        "  acmeCo/events:\n    schema: events.schema.yaml\n    key:\n    - /_estuary_id\n"
        "  acmeCo/users:\n    schema: users.schema.yaml\n    key:\n    - /email\n"
    )
    assert (out / "users.schema.yaml").read_text() == (
        "type: object\nrequired:\n- email\nproperties:\n  email:\n    type: string\n"
    )
    assert list(yaml.safe_load((out / "events.schema.yaml").read_text())) == [
        "$defs",
        "type",
        "x-infer-schema",
    ]
    assert await run_acmeco(flow_file=flow, out=out, check=True, command=fake_command()) == 0


@pytest.mark.asyncio
async def test_check_lists_stale_files(tmp_path: Path) -> None:
    flow, out = write_flow(tmp_path, {"discover": DISCOVERED}), tmp_path / "acmeCo"
    assert await run_acmeco(flow_file=flow, out=out, command=fake_command()) == 0
    (out / "users.schema.yaml").write_text("type: object\n")
    (out / "gone.schema.yaml").write_text("type: object\n")
    (out / "events.schema.yaml").unlink()
    err = io.StringIO()
    assert await run_acmeco(flow_file=flow, out=out, check=True, command=fake_command(), err=err) == 1
    assert err.getvalue().splitlines() == [
        f"stale: {out / 'events.schema.yaml'}",
        f"stale: {out / 'gone.schema.yaml'}",
        f"stale: {out / 'users.schema.yaml'}",
    ]
    assert not (out / "events.schema.yaml").exists()


@pytest.mark.asyncio
async def test_config_file_overrides_and_failures(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, {"discover": DISCOVERED})
    config = tmp_path / "config.json"
    config.write_text('{"discover_error": "bad key"}')
    err = io.StringIO()
    assert (
        await run_acmeco(
            flow_file=flow, config_path=config, out=tmp_path / "x", command=fake_command(), err=err
        )
        == 1
    )
    assert "error: discover failed with exit code 1: bad key" in err.getvalue()
    assert not (tmp_path / "x").exists()
