"""Long-poll helpers shared by steps and pipelines."""

from __future__ import annotations

from ..store.models import Step
from .common import services


def wait_step_settled(step: Step) -> Step:
    """Hold while the step builds, up to the long-poll period; return it fresh."""
    if step.status == "creation_pending":
        svc = services()

        def settled() -> bool:
            return Step.get_by_id(step.id).status != "creation_pending"

        svc.events.wait_until(f"step:{step.id}", settled, svc.settings.long_poll_s)
    return Step.get_by_id(step.id)
