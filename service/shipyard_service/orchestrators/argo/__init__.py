"""The cluster backend: Argo Workflows (built with Hera) and Kubernetes.

builders.py renders objects (pure), client.py submits them, orchestrator.py implements the
Orchestrator interface on top; see docs/cluster.md for the operator's side."""

from .orchestrator import ArgoOrchestrator

__all__ = ["ArgoOrchestrator"]
