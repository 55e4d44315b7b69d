"""Page size that shrinks when big pages time out and grows back once they stop.

Large pages, above all with comments, time out at Zendesk (504) or at the client, and the
identical request fails identically: Zendesk's advice is to lower ``per_page``. Halving on
each timeout finds a size that works in a few tries; doubling back after a run of successes
keeps one bad hour from slowing the rest of a backfill.
"""

from __future__ import annotations

FLOOR = 10
GROW_AFTER = 10


class AdaptivePageSize:
    """The ``per_page`` to send next, between a floor and the configured page size."""

    def __init__(self, maximum: int, *, floor: int = FLOOR, grow_after: int = GROW_AFTER) -> None:
        self.maximum = maximum
        self.floor = min(floor, maximum)
        self.grow_after = grow_after
        self.current = maximum
        self._successes = 0

    def shrink(self) -> bool:
        """Halve after a timeout; False when already at the floor (a real failure then)."""
        self._successes = 0
        if self.current <= self.floor:
            return False
        self.current = max(self.floor, self.current // 2)
        return True

    def succeeded(self) -> bool:
        """Count a good page; double after a run of them. True when the size grew."""
        if self.current >= self.maximum:
            return False
        self._successes += 1
        if self._successes < self.grow_after:
            return False
        self._successes = 0
        self.current = min(self.maximum, self.current * 2)
        return True
