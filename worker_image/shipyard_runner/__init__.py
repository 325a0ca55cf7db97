"""Shipyard step runner: imports a user function, runs it, reports to the Shipyard API.

Standard library only: it runs inside the step's virtualenv or image, next to arbitrary
user requirements, and must never conflict with them. Python 3.8+.

Entry point: ``python -m shipyard_runner run|serve ...`` (see ``docs/runner-protocol.md``).
Submodules are imported lazily by the CLI to keep the start of a run fast, so this file
imports nothing.
"""

__version__ = "0.1.0"
