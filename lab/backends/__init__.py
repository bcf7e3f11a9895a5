"""Hypervisor backends: what the lab lifecycle needs from a virtualisation layer."""
