"""Encrypted backups as age files, written and read as streams so no plaintext touches the disk.

Writing: :class:`EncryptingWriter` is a write-only binary file object that the archive writer
writes its zip into (zipfile writes to non-seekable streams); it hands the bytes to
``pyrage.encrypt_io`` on a second thread, which writes the age file to the destination.
pyrage only pulls from a readable object, so the two meet in a bounded queue: at most
``QUEUE_CHUNKS`` chunks of ``CHUNK_BYTES`` wait, plus the one being filled (and the one write
that overfills it) and the one being encrypted (in age's 64 KiB blocks): under 8 MiB plus one
write, whatever the archive's size.

Reading: zipfile needs to seek, and age can only be read from the start. :func:`open_decrypted`
decrypts the age file once into a scratch file that is encrypted again with AES-256-CTR under
a key that exists only in this process's memory, then reads it back as a seekable file object
(CTR decrypts any offset on its own). The scratch file lives in a locked, owner-only scratch
folder (scratch.py) and is removed on close; a crash leaves ciphertext whose key died with the
process, and the next sweep removes it. Memory: one read's worth of bytes, plus age's blocks.

An encrypted slot is the plain slot's name with ``.age`` appended (``org_{code}_{weekday}_
backup.zip.age``), so a person sees it is encrypted and ``age -d`` gives back the zip's name.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import pyrage
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from desktop_backup.archive import ArchiveError
from desktop_backup.errors import DesktopBackupError
from desktop_backup.scratch import ScratchFolder

AGE_MAGIC = b"age-encryption.org/v1\n"
ENCRYPTED_SUFFIX = ".age"
CHUNK_BYTES = 1024 * 1024  # what the writer hands to the encrypting thread at a time
QUEUE_CHUNKS = 4  # chunks that may wait for it: the writer's memory bound with the two above
READER_BUFFER = 256 * 1024  # the buffered reader over the scratch file
_PUT_WAIT_S = 0.1  # how often a blocked writer looks whether the encrypting thread has died
_EOF = None  # what the writer queues after its last chunk
SCRATCH_NAME = "decrypted.ctr"


class KeyMissing(ArchiveError):
    """The backup is encrypted and none of the keys at hand opens it."""


class EncryptedFileDamaged(ArchiveError):
    """The age file is cut off or altered: it cannot be decrypted."""


class NotEncrypted(ArchiveError):
    """The file was expected to be an age file and is not one."""


# --- names ---------------------------------------------------------------------------------

def encrypted_name(slot_name: str) -> str:
    """``org_X_monday_backup.zip`` -> ``org_X_monday_backup.zip.age``."""
    return slot_name + ENCRYPTED_SUFFIX


def plain_name(file_name: str) -> str:
    """The slot name an encrypted file stands for (the name itself for a plain one)."""
    return file_name.removesuffix(ENCRYPTED_SUFFIX)


def is_encrypted_name(file_name: str) -> bool:
    return file_name.endswith(ENCRYPTED_SUFFIX)


def is_age_file(path: Path) -> bool:
    """Whether the file starts as every age file does (its name is not trusted for that)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(AGE_MAGIC)) == AGE_MAGIC
    except OSError:
        return False


# --- writing -------------------------------------------------------------------------------

class _QueueSource(io.RawIOBase):
    """What pyrage reads from: the chunks the writer puts into the queue, then EOF."""

    def __init__(self, chunks: queue.Queue[bytes | BaseException | None]) -> None:
        super().__init__()
        self._chunks = chunks
        self._current = memoryview(b"")
        self._ended = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._current and not self._ended:
            item = self._chunks.get()
            if isinstance(item, BaseException):
                raise item  # the writer gave up: pyrage stops and the file stays unfinished
            self._ended = item is _EOF
            self._current = memoryview(item or b"")
        size = len(self._current) if size is None or size < 0 else size
        piece, self._current = self._current[:size], self._current[size:]
        return bytes(piece)


class EncryptingWriter(io.RawIOBase):
    """A write-only stream whose bytes reach `destination` as one age file for `recipients`.

    Use as a context manager: a clean exit finishes the age file (its last block and tag),
    an exception abandons it (the caller removes the unfinished file). `destination` is left
    open; the caller flushes and fsyncs it as for a plain archive."""

    def __init__(self, destination: BinaryIO, recipients: Sequence[pyrage.x25519.Recipient]
                 ) -> None:
        super().__init__()
        if not recipients:
            raise DesktopBackupError("An encrypted backup needs at least one key to encrypt "
                                     "for; none was given.")
        self._chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(QUEUE_CHUNKS)
        self._pending = bytearray()
        self._written = 0
        self._error: BaseException | None = None
        self._destination = _Destination(destination)
        self._thread = threading.Thread(
            target=self._encrypt, args=(_QueueSource(self._chunks), self._destination,
                                        list(recipients)),
            name="age-encrypt", daemon=True)
        self._thread.start()

    def _encrypt(self, source: _QueueSource, destination: _Destination, recipients: list
                 ) -> None:
        try:
            pyrage.encrypt_io(source, destination, recipients)
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
            self._error = exc

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed encrypted backup")
        size = len(data)
        self._pending += data
        while len(self._pending) >= CHUNK_BYTES:
            self._hand_on(bytes(self._pending[:CHUNK_BYTES]))
            del self._pending[:CHUNK_BYTES]
        self._written += size
        return size

    def tell(self) -> int:
        """Bytes written so far (zipfile asks; seeking is not possible)."""
        return self._written

    def close(self) -> None:
        """Finish the age file; raises what stopped the encryption, if anything did."""
        if self.closed:
            return
        try:
            if self._pending:
                self._hand_on(bytes(self._pending))
                self._pending.clear()
            self._hand_on(_EOF)
            self._thread.join()
            if self._error is not None:
                self._raise_failure()
        finally:
            super().close()

    def abort(self) -> None:
        """Stop without finishing: the destination holds an unfinished age file, no more."""
        if self.closed:
            return
        try:
            if self._thread.is_alive():
                self._hand_on(OSError("The encrypted backup was abandoned."), quiet=True)
            self._thread.join()
        finally:
            super().close()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        """Forgotten without close(): abandon, never finish (io's default would close, and
        an age file finished around a half-written zip would look whole)."""
        if "_thread" in self.__dict__:  # else __init__ refused its arguments: nothing to stop
            self.abort()

    def _hand_on(self, item: bytes | BaseException | None, quiet: bool = False) -> None:
        """Queue `item` for the encrypting thread, waiting while the queue is full, unless
        that thread has stopped (then its failure is raised, or ignored when `quiet`)."""
        while True:
            if not self._thread.is_alive():
                if not quiet:
                    self._raise_failure()
                return
            try:
                self._chunks.put(item, timeout=_PUT_WAIT_S)
                return
            except queue.Full:
                continue

    def _raise_failure(self) -> None:
        """Raise what stopped the encrypting thread before it read to the end."""
        error = self._error
        if error is None:
            raise DesktopBackupError("The encryption of the backup stopped early.")
        disk = self._destination.error
        if disk is not None and disk.errno is not None:
            raise disk  # the disk's own error (full, gone), which the caller words
        raise DesktopBackupError(f"The backup could not be encrypted ({error}).") from error


class _Destination(io.RawIOBase):
    """The file the age bytes go to, remembering its error: pyrage reports it as text."""

    def __init__(self, target: BinaryIO) -> None:
        super().__init__()
        self._target = target
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        try:
            return self._target.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        if not self.closed:
            self._target.flush()


# --- reading -------------------------------------------------------------------------------

def open_decrypted(path: Path, identities: Sequence[pyrage.x25519.Identity], *,
                   scratch_parent: Path | None = None) -> io.BufferedReader:
    """A read-only, seekable binary file of the zip inside the age file at `path`.

    Decrypts the whole file first (so a wrong key, a cut-off or altered file is found before
    anything is read), into a scratch file that only this process can decrypt. Close it (or
    use it in a ``with``) to remove the scratch file. Raises KeyMissing, EncryptedFileDamaged,
    NotEncrypted, or DesktopBackupError for a scratch file that could not be written."""
    path = Path(path)
    _check_magic(path)
    folder = ScratchFolder(scratch_parent)
    try:
        scratch = _ScratchCipherFile(folder)
        try:
            _decrypt_into(path, identities, scratch)
        except BaseException:
            scratch.close()
            raise
        return io.BufferedReader(scratch, READER_BUFFER)
    except BaseException:
        folder.remove()
        raise


def _check_magic(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(AGE_MAGIC))
    except FileNotFoundError:
        raise ArchiveError(f"There is no backup file at {path}.") from None
    except OSError as exc:
        raise ArchiveError(f"{path.name} cannot be read ({exc.strerror or exc}).") from None
    if not head:
        raise EncryptedFileDamaged(f"{path.name} is empty; it is not a backup.")
    if head != AGE_MAGIC:
        raise NotEncrypted(f"{path.name} is not an encrypted backup: it is not an age file.")


def _decrypt_into(path: Path, identities: Sequence[pyrage.x25519.Identity],
                  scratch: _ScratchCipherFile) -> None:
    if not identities:
        raise KeyMissing(_key_missing(path))
    try:
        with open(path, "rb") as source:
            pyrage.decrypt_io(source, scratch.sink(), list(identities))
        scratch.finish()
    except (pyrage.DecryptError, OSError) as exc:
        if scratch.write_error is not None:
            raise DesktopBackupError(
                f"The backup could not be decrypted for reading: the temporary folder "
                f"{scratch.folder.parent} refused it "
                f"({scratch.write_error.strerror or scratch.write_error}); free some space there "
                "and try again.") from exc
        if isinstance(exc, pyrage.DecryptError) and "no matching keys" in str(exc).lower():
            raise KeyMissing(_key_missing(path)) from None
        raise EncryptedFileDamaged(_damaged(path)) from None


def _key_missing(path: Path) -> str:
    return (f"The backup {path.name} is encrypted with a key this workstation does not "
            "have: import the organization's recovery sheet (desktop-backup key import FILE "
            "--org ORG, or paste the key when the restore wizard asks), then try again.")


def _damaged(path: Path) -> str:
    return (f"The encrypted backup {path.name} is cut off or damaged (perhaps an interrupted "
            "copy), so it cannot be decrypted; use another day's backup.")


class _ScratchCipherFile(io.RawIOBase):
    """The decrypted zip, kept on disk under AES-256-CTR with a key held only in memory:
    written once from the start, then read at any offset."""

    def __init__(self, folder: ScratchFolder) -> None:
        super().__init__()
        self.folder = folder.path
        self._folder = folder
        self._key = os.urandom(32)
        self._nonce = os.urandom(8)  # high half of the counter block; the low half counts
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(folder.path / SCRATCH_NAME, flags, 0o600)
        self._file = os.fdopen(fd, "w+b")
        self._encryptor = self._cipher(0).encryptor()  # the one pass that writes the file
        self._size = 0
        self._pos = 0
        self.write_error: OSError | None = None

    def sink(self) -> _CipherSink:
        return _CipherSink(self)

    def append(self, data: bytes) -> int:
        try:
            self._file.write(self._encryptor.update(data))
        except OSError as exc:
            self.write_error = exc
            raise
        self._size += len(data)
        return len(data)

    def finish(self) -> None:
        """Everything decrypted reaches the file now, so a full disk is found while
        decrypting (one sentence, nothing restored), not half-way through reading it."""
        try:
            self._file.flush()
        except OSError as exc:
            self.write_error = exc
            raise

    def _cipher(self, offset: int) -> Cipher:
        """AES-CTR positioned at `offset`: the counter of its block; the caller skips the
        bytes of that block before `offset`."""
        block = offset // 16
        counter = self._nonce + block.to_bytes(8, "big")
        return Cipher(algorithms.AES(self._key), modes.CTR(counter))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        skip = self._pos % 16
        self._file.seek(self._pos - skip)
        data = self._file.read(want + skip)
        plain = self._cipher(self._pos - skip).decryptor().update(data)[skip:]
        buffer[:len(plain)] = plain
        self._pos += len(plain)
        return len(plain)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if self.closed:
            return
        try:
            with contextlib.suppress(OSError):  # a full disk refuses the flush: it goes anyway
                self._file.close()
            self._key = b""
        finally:
            self._folder.remove()
            super().close()


class _CipherSink(io.RawIOBase):
    """What pyrage writes the decrypted bytes to: the scratch file, encrypted on the way."""

    def __init__(self, target: _ScratchCipherFile) -> None:
        super().__init__()
        self._target = target

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        return self._target.append(bytes(data))
