"""Scanning connector output for leaked secrets without ever revealing them."""

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

SECRET_KEYS = frozenset(
    {"access_token", "api_key", "apikey", "client_secret", "password", "refresh_token", "token"}
)
_CONTEXT = 40
_REDACTED = b"<redacted>"


class SecretLeakError(Exception):
    """A configured secret appeared in connector output. The message never contains the secret."""

    def __init__(self, stream: str, secret_index: int, context: str):
        self.stream = stream
        self.secret_index = secret_index
        self.context = context
        super().__init__(f"secret #{secret_index} leaked on {stream}: ...{context}...")


def _encodings(secret: str) -> list[bytes]:
    forms = {
        secret.encode(),
        json.dumps(secret, ensure_ascii=False)[1:-1].encode(),
        json.dumps(secret, ensure_ascii=True)[1:-1].encode(),
    }
    return sorted(forms, key=len, reverse=True)


@dataclass
class SecretScanner:
    secrets: list[str]
    _forms: list[tuple[int, list[bytes]]] = field(init=False)

    def __post_init__(self) -> None:
        self._forms = [(i, _encodings(s)) for i, s in enumerate(self.secrets) if s]

    def scan_bytes(self, stream: str, data: bytes) -> None:
        for index, forms in self._forms:
            for form in forms:
                if form in data:
                    raise SecretLeakError(stream, index, self._context(data))

    def scan_value(self, stream: str, value: Any) -> None:
        """Scan a parsed JSON value, catching secrets hidden behind `\\uXXXX` escapes in the raw bytes."""
        self.scan_bytes(stream, orjson.dumps(value))

    def redact(self, data: bytes) -> bytes:
        for _, forms in self._forms:
            for form in forms:
                data = data.replace(form, _REDACTED)
        return data

    def _context(self, data: bytes) -> str:
        redacted = self.redact(data)
        position = redacted.find(_REDACTED)
        window = redacted[max(0, position - _CONTEXT) : position + len(_REDACTED) + _CONTEXT]
        return window.decode(errors="replace")


def secret_values(config: Any) -> list[str]:
    """String leaves under secret-looking keys, so a preview proves they never leak."""
    found: list[str] = []
    if isinstance(config, dict):
        for key, value in config.items():
            if isinstance(value, str) and key.lower() in SECRET_KEYS and value:
                found.append(value)
            else:
                found.extend(secret_values(value))
    elif isinstance(config, list):
        for item in config:
            found.extend(secret_values(item))
    return found
