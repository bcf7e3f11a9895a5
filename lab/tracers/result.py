"""What every tracer's parser returns: its events, and what it could not read."""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.events import Event

SAMPLES = 5  # unparsed lines kept as examples


@dataclass
class ParseResult:
    events: list[Event] = field(default_factory=list)
    unparsed: int = 0  # lines the parser does not understand: counted, never dropped silently
    unparsed_samples: list[str] = field(default_factory=list)
    lost: int = 0  # events the tracer itself reports lost (ftrace's LOST markers)
    unfinished: int = 0  # calls that never returned within the trace (strace)

    def not_understood(self, line: str) -> None:
        self.unparsed += 1
        if len(self.unparsed_samples) < SAMPLES:
            self.unparsed_samples.append(line)
