"""Resource monitoring: a sampler thread reading this machine's CPU, RAM, disk, network
(and GPU when one is visible) into the store, per worker, with retention."""

from .sampler import ResourceSampler, SamplerSettings, start_sampler

__all__ = ["ResourceSampler", "SamplerSettings", "start_sampler"]
