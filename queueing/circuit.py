"""A circuit breaker for the web process's Redis calls: after a failure, skip Redis for a while."""

import threading
import time


class CircuitBreaker:
    """Closed: calls go through. Open (for `open_seconds` after a failure): callers skip the call.

    After that one caller at a time may try again (half-open); success closes the circuit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._trial_running = False

    def allow(self) -> bool:
        with self._lock:
            if time.monotonic() < self._open_until:
                return False
            if self._open_until and self._trial_running:
                return False
            if self._open_until:
                self._trial_running = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._open_until = 0.0
            self._trial_running = False

    def record_failure(self, *, open_seconds: float) -> None:
        with self._lock:
            self._open_until = time.monotonic() + open_seconds
            self._trial_running = False

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until


redis_circuit = CircuitBreaker()
