"""Files that readers see whole or not at all.

A file is written under a temporary name in its own directory, given its
permissions, then renamed over the target; a failure on the way removes the
temporary file and leaves the target as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path: Path, *, mode: int) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it with `mode` when the block succeeds.

    The temporary file exists (empty, 0600) when the block starts; the block
    writes it, or has a program write it. When the block raises, the
    temporary file is removed and `path` is untouched.
    """
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # a directory this host will not write in: named by the file
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        temp.chmod(mode)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        if exc.errno is not None and exc.filename in (None, temp, str(temp)):
            # Named by the file the caller asked for, not the temporary one (a write that
            # fails, on a full disk, names none).
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to `path` with exactly `mode`, atomically."""
    with atomic_output(path, mode=mode) as temp:
        temp.write_bytes(data)
