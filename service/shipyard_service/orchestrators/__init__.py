"""Where steps are built and executions run: locally, or on Argo/Kubernetes."""
