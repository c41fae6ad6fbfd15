"""Passwords generated once per local stack and kept in a 0600 file in the state directory."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def password(secrets_file: Path, name: str) -> str:
    """Return the stored password for ``name``, generating and persisting it the first time."""
    data: dict[str, str] = {}
    if secrets_file.exists():
        data = json.loads(secrets_file.read_text())
    if name not in data:
        data[name] = secrets.token_urlsafe(24)
        write_private(secrets_file, json.dumps(data, indent=2))
    return data[name]


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, never briefly world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
