"""What the agent tells people: a short line per file and account on the terminal, and the same events as
JSON lines (stdlib logging) on standard error or in the configured log file, for log shippers."""
from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path

LOG = logging.getLogger("directlink.agent")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, event, and every field passed in `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        at = dt.datetime.fromtimestamp(record.created, dt.UTC)
        line = {"time": at.isoformat(timespec="milliseconds"), "level": record.levelname,
                "event": record.getMessage()}
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup(level: str, log_file: Path | None) -> None:
    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    LOG.handlers[:] = [handler]
    LOG.setLevel(level)
    LOG.propagate = False


def event(name: str, line: str | None = None, *, level: int = logging.INFO, **fields) -> None:
    """Log an event with its fields; `line`, if given, is also shown on the terminal."""
    LOG.log(level, name, extra=fields)
    if line is not None:
        print(line, flush=True)
