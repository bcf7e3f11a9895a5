"""Guest images: declarative recipes built from Debian packages into a kernel and initrd."""
