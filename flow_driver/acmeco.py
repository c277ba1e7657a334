"""Writing (or checking) the `acmeCo/` collection layout that `flowctl raw discover` produces."""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from .bindings import discovered_bindings
from .leaks import secret_values
from .preview import PreviewError, load_config
from .protocol import ConnectorDriver, ConnectorError, ProtocolError

DEFAULT_CAPTURE = "acmeCo/source-iterable-native"


@dataclass
class FlowSource:
    capture_name: str
    config: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)


def read_test_flow(path: Path, capture: str | None = None) -> FlowSource:
    """Read `captures.<name>.endpoint.local` from a test.flow.yaml (config inline or a relative file)."""
    document = yaml.safe_load(path.read_text()) or {}
    captures = document.get("captures") or {}
    if not captures:
        raise PreviewError(f"{path} has no captures")
    name = capture or next(iter(captures))
    if name not in captures:
        raise PreviewError(f"{path} has no capture {name}")
    local = captures[name].get("endpoint", {}).get("local", {})
    config = local.get("config")
    if isinstance(config, str):
        config = load_config(path.parent / config)
    if not isinstance(config, dict):
        raise PreviewError(f"{path}: captures.{name}.endpoint.local.config must be a mapping or a file name")
    env = {str(k): str(v) for k, v in (local.get("env") or {}).items()}
    return FlowSource(name, config, env)


def _dump(value: Any) -> str:
    return str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True))


def layout(discovered: dict[str, Any], prefix: str) -> dict[str, str]:
    """Map file names (relative to the output directory) to their contents."""
    bindings = sorted(discovered_bindings(discovered), key=lambda b: b["recommendedName"])
    collections = {
        f"{prefix}/{b['recommendedName']}": {"schema": f"{b['recommendedName']}.schema.yaml", "key": b["key"]}
        for b in bindings
    }
    files = {"flow.yaml": _dump({"collections": collections})}
    for binding in bindings:
        files[f"{binding['recommendedName']}.schema.yaml"] = _dump(binding["documentSchema"])
    return files


def stale_files(files: dict[str, str], out: Path) -> list[str]:
    """Files that are missing, differ, or are schema files no binding produces."""
    stale = [name for name, content in files.items() if _read(out / name) != content]
    if out.is_dir():
        stale += [p.name for p in sorted(out.glob("*.schema.yaml")) if p.name not in files]
    return sorted(stale)


def write_files(files: dict[str, str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out / name).write_text(content)


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


async def run_acmeco(
    *,
    flow_file: Path = Path("test.flow.yaml"),
    config_path: Path | None = None,
    out: Path = Path("acmeCo"),
    check: bool = False,
    command: list[str] | None = None,
    err: TextIO = sys.stderr,
) -> int:
    try:
        source = _source(flow_file, config_path)
        driver = ConnectorDriver(
            source.config,
            env=source.env,
            command=command,
            secrets=secret_values(source.config),
            capture_name=source.capture_name,
            collection_prefix=source.capture_name.split("/")[0],
        )
        discovered = (await driver.discover()).raise_for_error("discover")
        files = layout(discovered, driver.collection_prefix)
    except (ConnectorError, ProtocolError, PreviewError, OSError, yaml.YAMLError) as exc:
        err.write(f"error: {exc}\n")
        return 1
    if not check:
        write_files(files, out)
        err.write(f"wrote {len(files)} files to {out}\n")
        return 0
    stale = stale_files(files, out)
    for name in stale:
        err.write(f"stale: {out / name}\n")
    return 1 if stale else 0


def _source(flow_file: Path, config_path: Path | None) -> FlowSource:
    if config_path is None:
        return read_test_flow(flow_file)
    if not flow_file.is_file():
        return FlowSource(DEFAULT_CAPTURE, load_config(config_path))
    base = read_test_flow(flow_file)
    return FlowSource(base.capture_name, load_config(config_path), base.env)
