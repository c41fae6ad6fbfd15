"""Running a command on a real pseudo-terminal, as in a shell, and reading back what it showed."""

from __future__ import annotations

import os
import re
import subprocess

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(command: list[str], *, timeout: float = 300) -> tuple[int, str]:
    """Run ``command`` with stdin, stdout and stderr on a new pseudo-terminal; (exit code, screen text)."""
    master, slave = os.openpty()
    process = subprocess.Popen(
        command,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
        env={**os.environ, "COLUMNS": "200", "LINES": "40", "TERM": "xterm-256color"},
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = process.wait(timeout=timeout)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
