"""Checking captured documents against their binding's write schema and key, as the runtime does."""

from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema import FormatChecker
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import Draft202012Validator, validator_for

_MISSING = object()
_PREVIEW = 300


class DocumentError(Exception):
    """A captured document failed its binding's schema or key."""

    def __init__(self, binding: int, collection: str, document: Any, reason: str):
        self.binding = binding
        self.collection = collection
        self.document = document
        self.reason = reason
        preview = orjson.dumps(document).decode()
        if len(preview) > _PREVIEW:
            preview = preview[:_PREVIEW] + "..."
        super().__init__(f"binding {binding} ({collection}): {reason}; document: {preview}")


def resolve_pointer(doc: Any, pointer: str) -> Any:
    """Resolve an RFC 6901 JSON pointer, returning `_MISSING` when it doesn't resolve."""
    if pointer == "":
        return doc
    node = doc
    for token in pointer.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _error_path(path: Any) -> str:
    return "/" + "/".join(str(p) for p in path)


@dataclass
class BindingValidator:
    index: int
    collection: str
    key: list[str]
    schema: dict[str, Any]
    _validator: Validator = field(init=False)

    def __post_init__(self) -> None:
        cls = validator_for(self.schema, default=Draft202012Validator)
        cls.check_schema(self.schema)
        self._validator = cls(self.schema, format_checker=FormatChecker())

    @classmethod
    def from_binding(cls, index: int, binding: dict[str, Any]) -> "BindingValidator":
        collection = binding["collection"]
        return cls(index, collection["name"], list(collection["key"]), collection["writeSchema"])

    def check(self, doc: Any) -> None:
        error = best_match(self._validator.iter_errors(doc))
        if error is not None:
            reason = f"schema violation at {_error_path(error.absolute_path)}: {error.message}"
            raise DocumentError(self.index, self.collection, doc, reason)
        for pointer in self.key:
            if resolve_pointer(doc, pointer) is _MISSING:
                raise DocumentError(
                    self.index, self.collection, doc, f"key pointer {pointer} does not resolve"
                )
