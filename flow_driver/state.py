"""Connector state folding and state-key encoding, as the Flow runtime does them."""

import copy
from typing import Any

_STATE_KEY_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+.=")


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7396 JSON merge patch, returning a new value."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def fold_checkpoint(state: dict[str, Any], checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Fold one `checkpoint` message body (`{"state": {"updated", "mergePatch"}}`) into `state`."""
    update = checkpoint.get("state")
    if update is None:
        return state
    updated = update.get("updated", {})
    folded = merge_patch(state, updated) if update.get("mergePatch", False) else copy.deepcopy(updated)
    if not isinstance(folded, dict):
        raise ValueError("a checkpoint must leave the state a JSON object")
    return folded


def encode_state_key(resource_path: list[str], backfill: int = 0) -> str:
    """Flow's `assemble::encode_state_key`: percent-encode the joined path, suffix `.v<backfill>`."""
    joined = "/".join(resource_path).encode()
    encoded = "".join(chr(b) if b in _STATE_KEY_SAFE else f"%{b:02X}" for b in joined)
    return f"{encoded}.v{backfill}" if backfill > 0 else encoded
