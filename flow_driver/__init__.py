"""Plays the Flow runtime (and `flowctl preview`) against a capture connector, for tests and previews."""

from .bindings import bindings_from_discovered, open_binding, validate_binding
from .leaks import SecretLeakError, SecretScanner
from .protocol import (
    CaptureProgress,
    CaptureResult,
    ConnectorDriver,
    ConnectorError,
    ProtocolError,
    UnaryResult,
    parse_log_line,
)
from .state import encode_state_key, fold_checkpoint, merge_patch
from .validation import BindingValidator, DocumentError

__all__ = [
    "BindingValidator",
    "CaptureProgress",
    "CaptureResult",
    "ConnectorDriver",
    "ConnectorError",
    "DocumentError",
    "ProtocolError",
    "SecretLeakError",
    "SecretScanner",
    "UnaryResult",
    "bindings_from_discovered",
    "encode_state_key",
    "fold_checkpoint",
    "merge_patch",
    "open_binding",
    "parse_log_line",
    "validate_binding",
]
