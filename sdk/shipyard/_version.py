"""Version of the Shipyard SDK (sent in the ``craft-ai-client`` header)."""

__version__ = "0.1.0"
