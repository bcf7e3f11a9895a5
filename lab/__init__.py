"""socklab: paired QEMU/libvirt network labs with cross-VM socket tracing."""

__version__ = "0.1.0"
