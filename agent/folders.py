"""The ERP's folders: which outbox files are ready, atomic writes into the inbox, and moving finished files
to processed/ or failed/ (with a .reason.txt beside a failed one)."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

# Names an ERP (or an editor, or rsync) uses while a file is still being written: never picked up.
_UNFINISHED_SUFFIXES = (".tmp", ".part", ".partial", ".swp", ".reason.txt")


@dataclass(frozen=True)
class OutboxFile:
    path: Path
    data: bytes
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


def waiting(outbox: Path) -> list[OutboxFile]:
    """Regular files directly in the outbox, oldest first (then by name), read whole and hashed."""
    found = []
    for path in outbox.iterdir():
        if path.name.startswith(".") or path.name.endswith(_UNFINISHED_SUFFIXES) or not path.is_file():
            continue
        try:
            found.append((path.stat().st_mtime, path.name, path))
        except FileNotFoundError:   # the ERP took it back meanwhile
            continue
    files = []
    for _, _, path in sorted(found):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        files.append(OutboxFile(path, data, hashlib.sha256(data).hexdigest()))
    return files


def write_atomically(folder: Path, name: str, data: bytes) -> Path:
    """Write, fsync, rename, fsync the folder: a reader sees the whole file or none, also after a crash.
    Writing the same name again replaces it, so a repeated delivery never makes a second file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    temp = folder / f".{name}.tmp"
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, target)
    _sync_dir(folder)
    return target


def same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except (FileNotFoundError, IsADirectoryError):
        return False


def free_name(folder: Path, name: str, sha256: str) -> str:
    """`name`, unless a different file already has it there: then the name with a piece of our hash."""
    if not (folder / name).exists():
        return name
    stem, dot, suffix = name.partition(".")
    return f"{stem}-{sha256[:12]}{dot}{suffix}"


def move_processed(file: OutboxFile, processed: Path) -> Path:
    processed.mkdir(parents=True, exist_ok=True)
    target = processed / free_name(processed, file.name, file.sha256)
    os.replace(file.path, target)
    _sync_dir(processed)
    _sync_dir(file.path.parent)
    return target


def move_failed(file: OutboxFile, failed: Path, reason: str) -> Path:
    """The reason first, then the file: after a crash in between, the file is still there to move again."""
    failed.mkdir(parents=True, exist_ok=True)
    name = free_name(failed, file.name, file.sha256)
    write_atomically(failed, f"{name}.reason.txt", (reason.rstrip("\n") + "\n").encode("utf-8"))
    os.replace(file.path, failed / name)
    _sync_dir(failed)
    _sync_dir(file.path.parent)
    return failed / name


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
