"""What the operator sees of a running service: metrics, structured logs, traces."""
