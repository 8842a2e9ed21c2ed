"""An encrypted backup written to, and read through, a nearly full disk (test_encryption).

Runs inside a private mount namespace. argv: a plain archive to encrypt, an empty mount point.
Mounts a tmpfs smaller than the archive, then (1) encrypts the archive onto it and (2) opens
an encrypted copy kept elsewhere with the tmpfs as the reader's scratch folder; prints a JSON
report of the errors and of what is left on the small disk.
"""

import json
import subprocess
import sys
from pathlib import Path

from pyrage import x25519

from desktop_backup.encryption import EncryptingWriter, open_decrypted
from desktop_backup.errors import DesktopBackupError

plain, mount = Path(sys.argv[1]), Path(sys.argv[2])
identity = x25519.Identity.generate()
outside = plain.with_name(plain.name + ".age")
with open(plain, "rb") as source, open(outside, "wb") as out, \
        EncryptingWriter(out, [identity.to_public()]) as writer:
    writer.write(source.read())
size = plain.stat().st_size // 2
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)

write_error = None
try:
    with open(plain, "rb") as source, open(mount / "backup.zip.age", "wb") as out, \
            EncryptingWriter(out, [identity.to_public()]) as writer:
        writer.write(source.read())
        out.flush()
except OSError as exc:
    write_error = {"errno": exc.errno, "message": str(exc)}
(mount / "backup.zip.age").unlink(missing_ok=True)

read_error = None
try:
    open_decrypted(outside, [identity], scratch_parent=mount).close()
except DesktopBackupError as exc:
    read_error = str(exc)
print(json.dumps({"write_error": write_error, "read_error": read_error,
                  "left": sorted(str(p.relative_to(mount)) for p in mount.rglob("*"))}))
