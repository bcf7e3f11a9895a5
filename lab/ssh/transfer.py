"""Copying files to and from a node over SFTP (dropbear runs sftp-server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path

import asyncssh

from lab.log import get_logger
from lab.ssh.errors import TransferError

SFTP_START_TIMEOUT = 10.0
RECURSIVE_HINT = "copy directories recursively (lab cp -r)"


class FileTransfers:
    """The SFTP side of a node session; the SFTP channel opens on first use."""

    def __init__(self, node: str, connection: asyncssh.SSHClientConnection) -> None:
        self.node = node
        self._conn = connection
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()
        self._log = get_logger(__name__, node=node)

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.exit()
            self._sftp = None

    async def put(self, local: Path, remote: str, *, recursive: bool,
                  timeout: float | None) -> None:
        if not local.exists():
            raise TransferError(self.node, f"cannot copy {local}: no such file or directory")
        if local.is_dir() and not recursive:
            raise TransferError(self.node, f"cannot copy {local}: is a directory",
                                hint=RECURSIVE_HINT)

        async def copy() -> None:  # all of it within the timeout, the session's opening too
            sftp = await self._client()
            await sftp.put(str(local), remote, preserve=True, recurse=recursive)
        await self._run(f"{local} to {self.node}:{remote}", timeout, copy())

    async def get(self, remote: str, local: Path, *, recursive: bool,
                  timeout: float | None) -> None:
        async def copy() -> None:  # all of it within the timeout, the check for a directory too
            sftp = await self._client()
            if not recursive and await sftp.isdir(remote):
                raise TransferError(self.node, f"cannot copy {self.node}:{remote}: is a "
                                    "directory", hint=RECURSIVE_HINT)
            await sftp.get(remote, str(local), preserve=True, recurse=recursive)
        await self._run(f"{self.node}:{remote} to {local}", timeout, copy())

    async def _client(self) -> asyncssh.SFTPClient:
        async with self._lock:
            if self._sftp is None:
                try:
                    async with asyncio.timeout(SFTP_START_TIMEOUT):
                        self._sftp = await self._conn.start_sftp_client()
                except TimeoutError:
                    raise TransferError(self.node, "SFTP did not start within "
                                        f"{SFTP_START_TIMEOUT:g} s") from None
                except (asyncssh.Error, OSError) as exc:
                    raise TransferError(
                        self.node, f"cannot start SFTP: {_reason(exc)}",
                        hint="the guest image needs an sftp-server for dropbear") from None
            return self._sftp

    async def _run(self, what: str, timeout: float | None, operation: Awaitable[None]) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await operation
        except TimeoutError:
            raise TransferError(self.node, f"copying {what} did not finish within "
                                f"{timeout:g} s") from None
        except (asyncssh.Error, OSError) as exc:
            raise self._error(what, exc) from None
        self._log.debug("copied %s in %.3f s", what, time.monotonic() - started)

    def _error(self, what: str, exc: BaseException) -> TransferError:
        return TransferError(self.node, f"cannot copy {what}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__
