"""Live metrics, bottleneck diagnosis, autotune, dashboard, HTTP endpoints and the run report."""
