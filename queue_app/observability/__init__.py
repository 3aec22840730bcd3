"""Observability of the web process: scrape-time queue gauges, OpenTelemetry setup, log format,
health probes."""
