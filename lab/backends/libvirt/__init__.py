"""The libvirt backend (libvirt-python); the only place that imports libvirt."""

from lab.backends.libvirt.backend import LibvirtBackend

__all__ = ["LibvirtBackend"]
