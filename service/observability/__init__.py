"""Logging set-up, Prometheus metrics and health endpoints."""
