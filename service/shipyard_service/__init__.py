"""Shipyard service: the HTTP API, domain rules, store and orchestrators."""

__version__ = "0.1.0"
