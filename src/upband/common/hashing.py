"""SHA-256 digests of files (read in blocks) and of bytes: the checksums of shipped weights,
corpus shards and run files."""

from __future__ import annotations

import hashlib
import os

#: Bytes read per block when hashing a file.
BLOCK_BYTES = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file at ``path``, read in :data:`BLOCK_BYTES` blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
