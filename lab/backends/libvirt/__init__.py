"""The libvirt backend (libvirt-python); the only place that imports libvirt."""

from lab.backends.libvirt.backend import DEFAULT_URI, LibvirtBackend

__all__ = ["DEFAULT_URI", "LibvirtBackend"]
