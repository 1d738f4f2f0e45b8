"""Readers of traces: the HTML viewer (view.py) and OpenTelemetry export (otel.py); never writes a trace."""
