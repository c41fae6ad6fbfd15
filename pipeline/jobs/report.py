"""``pipeline report``: read the summary from PostgreSQL and write it as one self-contained HTML file."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from pipeline.analytics.html_report import render_html
from pipeline.analytics.summary import summary
from pipeline.config.settings import Settings
from pipeline.errors import ConfigError


def write_report(settings: Settings, path: Path, *, hours: int = 24) -> Path:
    """Write the report of the last ``hours`` hours to ``path`` (replaced whole, never half-written)."""
    page = render_html(summary(settings, hours=hours), generated_at=dt.datetime.now(dt.UTC))
    target = path.expanduser().resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {target}: {exc.strerror}") from None
    return target
