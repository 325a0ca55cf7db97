"""Groups of :class:`shipyard.CraftAiSdk` methods, one module per platform resource."""
