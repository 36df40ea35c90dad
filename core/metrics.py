"""Prometheus figures per route: request counts by status, latency histograms.

Each app has its own registry, so several apps in one process (tests) never clash.

Every label takes a bounded set of values (DESIGN §14), so no request, however made up,
creates a series of its own: the method is one of ``METHODS`` or ``other``, the path is
the matched route's template (``/v1/persons/{person_id}``) or ``unmatched``, the status one
the service answers or its class (``4xx``).
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

# Kiosk decisions should land well under 150 ms; the tail buckets catch detection spikes.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"
# The statuses the service gives (DESIGN §5 and the framework's own); any other is
# counted under its class.
STATUSES = frozenset(
    {200, 201, 204, 304, 307, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503}
)


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def status_label(status: int) -> str:
    if status in STATUSES:
        return str(status)
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "border_http_requests",
            "HTTP requests by method, route template and status.",
            ("method", "path", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "border_http_request_duration_seconds",
            "Time from request to response, by method and route template.",
            ("method", "path"),
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, path: str | None, status: int, seconds: float) -> None:
        """Count one request; ``path`` is the matched route's template, None when none
        matched."""
        method, path = method_label(method), path or UNMATCHED
        self.requests.labels(method, path, status_label(status)).inc()
        self.latency.labels(method, path).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
