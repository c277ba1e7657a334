"""Turning a `discovered` response into Open/Validate bindings."""

from typing import Any

from .state import encode_state_key


def discovered_bindings(discovered: dict[str, Any]) -> list[dict[str, Any]]:
    """Accept a full `{"discovered": ...}` response or its body."""
    body = discovered.get("discovered", discovered)
    return list(body["bindings"])


def _name(binding: dict[str, Any]) -> str:
    return str(binding["resourceConfig"]["name"])


def open_binding(discovered: dict[str, Any], *, backfill: int = 0, prefix: str = "acmeCo") -> dict[str, Any]:
    resource_path = [_name(discovered)]
    return {
        "collection": {
            "name": f"{prefix}/{discovered['recommendedName']}",
            "key": discovered["key"],
            "writeSchema": discovered["documentSchema"],
        },
        "resourceConfig": discovered["resourceConfig"],
        "resourcePath": resource_path,
        "stateKey": encode_state_key(resource_path, backfill),
        "backfill": backfill,
    }


def bindings_from_discovered(
    discovered: dict[str, Any],
    *,
    include_disabled: bool = False,
    only: list[str] | None = None,
    backfill: dict[str, int] | None = None,
    prefix: str = "acmeCo",
) -> list[dict[str, Any]]:
    """Build Open bindings in discovery order.

    `only` selects bindings by resource name or recommendedName (and then includes disabled ones);
    `backfill` maps a resource name to its backfill counter.
    """
    candidates = discovered_bindings(discovered)
    if only is not None:
        known = {_name(b) for b in candidates} | {b["recommendedName"] for b in candidates}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"unknown bindings: {', '.join(unknown)}")
    backfill = backfill or {}
    result = []
    for binding in candidates:
        if only is not None:
            if _name(binding) not in only and binding["recommendedName"] not in only:
                continue
        elif binding.get("disable", False) and not include_disabled:
            continue
        result.append(open_binding(binding, backfill=backfill.get(_name(binding), 0), prefix=prefix))
    return result


def validate_binding(binding: dict[str, Any]) -> dict[str, Any]:
    """The subset of an Open binding that a Validate request carries."""
    return {
        "collection": binding["collection"],
        "resourceConfig": binding["resourceConfig"],
        "backfill": binding.get("backfill", 0),
    }
