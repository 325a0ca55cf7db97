"""Shipyard SDK: Python client of a Shipyard environment.

It offers the functions of ``craft-ai-sdk`` 0.60: replace ``craft_ai_sdk`` by
``shipyard`` in imports.
"""

from ._version import __version__ as __version__
from .constants import (
    CREATION_PARAMETER_VALUE,
    DEPLOYMENT_EXECUTION_RULES,
    DEPLOYMENT_MODES,
    STEP_PARAMETER,
)
from .exceptions import SdkException
from .io import INPUT_OUTPUT_TYPES, Input, InputSource, Output, OutputDestination
from .sdk import CraftAiSdk

__all__ = [
    "CREATION_PARAMETER_VALUE",
    "DEPLOYMENT_EXECUTION_RULES",
    "DEPLOYMENT_MODES",
    "INPUT_OUTPUT_TYPES",
    "STEP_PARAMETER",
    "CraftAiSdk",
    "Input",
    "InputSource",
    "Output",
    "OutputDestination",
    "SdkException",
]
