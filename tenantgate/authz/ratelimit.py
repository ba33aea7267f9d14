"""A small in-memory token bucket per caller address (open endpoints such as /register)."""

from __future__ import annotations

import time


class Buckets:
    def __init__(self, burst: int, per_minute: float, max_keys: int = 10_000) -> None:
        self.burst, self.rate, self.max_keys = burst, per_minute / 60.0, max_keys
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> bool:
        now = time.monotonic()
        tokens, last = self._state.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self._state[key] = (tokens, now)
            return False
        if len(self._state) >= self.max_keys and key not in self._state:
            self._state.clear()  # bounded memory; a flood resets everyone's allowance
        self._state[key] = (tokens - 1, now)
        return True
