"""Environments and the service catalogue, the blue-green engine, AWS traffic and metrics, releases."""
