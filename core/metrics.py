"""Prometheus figures (DESIGN §15): requests per route, domain series, pool use, galleries,
the process.

Each ``Metrics`` has its own registry, so several apps in one process (tests) never clash.
Under ``border serve --workers N`` the workers are processes: ``serve`` gives them a
directory in ``PROMETHEUS_MULTIPROC_DIR``, prometheus_client keeps each worker's figures
in files there, and ``/metrics``, whichever worker answers, reads them all: counters and
histograms are summed, pool gauges summed over the live workers, the gallery size is the
last written (every worker holds the same galleries), and process figures are given per
worker (label ``pid``).

Every label takes a bounded set of values (DESIGN §14), so no request, however made up,
creates a series of its own: the method is one of ``METHODS`` or ``other``, the path is
the matched route's template (``/v1/persons/{person_id}``) or ``unmatched``, the status one
the service answers or its class (``4xx``); a border point is one the policy names
(``border_points``) or ``other``; decisions, reason codes and enrollment outcomes are the
service's own codes.
"""

import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    multiprocess,
)
from prometheus_client.exposition import generate_latest

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
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


OTHER = "other"

# The standard process series, read from /proc by prometheus_client's own collector and
# written as gauges, so that under several workers each worker's figures are kept (by pid).
_PROCESS_SERIES = {
    "process_resident_memory_bytes": "Resident memory size in bytes.",
    "process_virtual_memory_bytes": "Virtual memory size in bytes.",
    "process_cpu_seconds_total": "Total user and system CPU time spent in seconds.",
    "process_open_fds": "Number of open file descriptors.",
    "process_max_fds": "Maximum number of open file descriptors.",
    "process_start_time_seconds": "Start time of the process since unix epoch in seconds.",
}


def multiprocess_dir() -> Path | None:
    """The directory the workers share their figures in, when ``serve`` runs several."""
    folder = os.environ.get(MULTIPROC_DIR)
    return Path(folder) if folder else None


def border_point_label(border_point: str, known: Collection[str]) -> str:
    return border_point if border_point in known else OTHER


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess = multiprocess_dir() is not None
        self._process = ProcessCollector(registry=None)
        r = self.registry
        self.requests = Counter(
            "border_http_requests",
            "HTTP requests by method, route template and status.",
            ("method", "path", "status"),
            registry=r,
        )
        self.latency = Histogram(
            "border_http_request_duration_seconds",
            "Time from request to response, by method and route template.",
            ("method", "path"),
            buckets=_BUCKETS,
            registry=r,
        )
        self.crossings = Counter(
            "border_crossings",
            "Crossings recorded, by decision and border point (one the policy names, or other).",
            ("decision", "border_point"),
            registry=r,
        )
        self.crossing_reasons = Counter(
            "border_crossing_reasons",
            "Reasons given with recorded crossings, by code.",
            ("code",),
            registry=r,
        )
        self.enrollments = Counter(
            "border_enrollments",
            "Enrollment attempts by outcome: enrolled, enrolled_at_border, or the error code.",
            ("outcome",),
            registry=r,
        )
        self.gallery_templates = Gauge(
            "border_gallery_templates",
            "Templates held in each 1:N gallery.",
            ("gallery",),
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.pool = Gauge(
            "border_db_pool_connections",
            "Database pool connections: open, idle (available), in use, and the maximum.",
            ("state",),
            multiprocess_mode="livesum",
            registry=r,
        )
        self.pool_waiting = Gauge(
            "border_db_pool_waiting",
            "Requests waiting for a database connection.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.process = {
            name: Gauge(name, text, multiprocess_mode="liveall", registry=r)
            for name, text in _PROCESS_SERIES.items()
        }

    def observe(self, method: str, path: str | None, status: int, seconds: float) -> None:
        """Count one request; ``path`` is the matched route's template, None when none
        matched."""
        method, path = method_label(method), path or UNMATCHED
        self.requests.labels(method, path, status_label(status)).inc()
        self.latency.labels(method, path).observe(seconds)

    def crossing(self, decision: str, border_point: str, codes: Iterable[str]) -> None:
        self.crossings.labels(decision, border_point).inc()
        for code in codes:
            self.crossing_reasons.labels(code).inc()

    def enrollment(self, outcome: str) -> None:
        self.enrollments.labels(outcome).inc()

    def sample(self, pool_stats: Mapping[str, int], galleries: Mapping[str, int]) -> None:
        """Set the gauges: the pool (psycopg_pool's ``get_stats()``), the galleries' sizes,
        and this process."""
        size = pool_stats.get("pool_size", 0)
        idle = pool_stats.get("pool_available", 0)
        self.pool.labels("open").set(size)
        self.pool.labels("idle").set(idle)
        self.pool.labels("in_use").set(size - idle)
        self.pool.labels("max").set(pool_stats.get("pool_max", 0))
        self.pool_waiting.set(pool_stats.get("requests_waiting", 0))
        for gallery, templates in galleries.items():
            self.gallery_templates.labels(gallery).set(templates)
        for family in self._process.collect():
            for sample in family.samples:
                gauge = self.process.get(sample.name)
                if gauge is not None:
                    gauge.set(sample.value)

    def render(self) -> tuple[bytes, str]:
        """The exposition: this process's registry, or every worker's figures."""
        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """A worker's end: its live gauges leave the sums."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
