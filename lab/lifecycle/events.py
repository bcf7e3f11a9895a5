"""Progress events: the lifecycle reports what happens, the CLI decides how to show it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lab.backends.base import Accelerator


@dataclass(frozen=True)
class Event:
    lab: str


@dataclass(frozen=True)
class ImageStep(Event):
    image: str
    step: str


@dataclass(frozen=True)
class ImageReady(Event):
    image: str
    kernel_release: str
    cached: bool


@dataclass(frozen=True)
class AcceleratorChosen(Event):
    accel: Accelerator


@dataclass(frozen=True)
class NodeStarted(Event):
    node: str


@dataclass(frozen=True)
class NodeBooted(Event):
    """The guest printed its ready line (kernel and boot script are done)."""

    node: str
    seconds: float


@dataclass(frozen=True)
class NodeReady(Event):
    """The node answered a command over SSH."""

    node: str
    seconds: float


@dataclass(frozen=True)
class LabReady(Event):
    seconds: float


@dataclass(frozen=True)
class Removed(Event):
    kind: str  # "domain" or "network"
    name: str


@dataclass(frozen=True)
class TeardownFailed(Event):
    """A teardown (after a failed `lab up`, at the end of `lab run`) left part of a lab."""

    error: str


EventSink = Callable[[Event], None]


def ignore(_: Event) -> None:
    """An event sink for callers that do not show progress."""
