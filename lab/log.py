"""Loggers that carry their context, e.g. `[lab=pair-1a2b3c node=server] ...`."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any


class ContextLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every message with its key=value context."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any],
                ) -> tuple[Any, MutableMapping[str, Any]]:
        context = " ".join(f"{k}={v}" for k, v in (self.extra or {}).items())
        return f"[{context}] {msg}", kwargs


def get_logger(name: str, **context: object) -> ContextLogger:
    return ContextLogger(logging.getLogger(name), context)
