"""The ERP's folders: which outbox files are ready, atomic writes into the inbox, and moving finished files
to processed/ or failed/ (with a .reason.txt beside a failed one).

Whoever can write the outbox must not make the agent send a file it could not have dropped there itself:
an outbox file is read only if it is a regular file of the agent's own user, opened without following a
link (O_NOFOLLOW) and checked again on the open descriptor, so that a link swapped in after the look is
not followed either. Anything else is refused into failed/ with its reason, never sent, and a link is
moved as the link it is, never to processed/."""
from __future__ import annotations

import contextlib
import hashlib
import os
import stat
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


@dataclass(frozen=True)
class Unsafe:
    """An outbox entry the agent will not read (a link, a device or pipe, another user's file, a file in
    the way of processed/ or failed/): `name` is the name it had in the outbox."""
    path: Path
    name: str
    reason: str


class UnsafeFile(OSError):
    """Raised by read_own(): the path is not a regular file of ours (the message says what it is)."""


def waiting(outbox: Path) -> tuple[list[OutboxFile], list[Unsafe]]:
    """Regular files of ours directly in the outbox, oldest first (then by name), read whole and hashed;
    and the entries refused (links, devices, pipes, sockets, other users' files). Folders are not looked into."""
    found, unsafe = [], []
    for path in outbox.iterdir():
        if path.name.startswith(".") or path.name.endswith(_UNFINISHED_SUFFIXES):
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:   # the ERP took it back meanwhile
            continue
        if stat.S_ISDIR(info.st_mode):
            continue                # processed/, failed/, or a folder of the ERP's own
        problem = _unsafe(info)
        if problem is not None:
            unsafe.append(Unsafe(path, path.name, _described(path, problem)))
        else:
            found.append((info.st_mtime, path.name, path))
    files = []
    for _, _, path in sorted(found):
        try:
            data = read_own(path)
        except FileNotFoundError:
            continue
        except UnsafeFile as err:   # swapped for something else since the look above
            unsafe.append(Unsafe(path, path.name, _described(path, str(err))))
            continue
        files.append(OutboxFile(path, data, hashlib.sha256(data).hexdigest()))
    return files, unsafe


def read_own(path: Path) -> bytes:
    """The bytes of a regular file of the agent's user, never through a link (FileNotFoundError if it is
    gone, UnsafeFile if it is anything else). Non-blocking, so that a pipe put in its place cannot hang us."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if isinstance(err, FileNotFoundError):
            raise
        info = _lstat(path)
        raise UnsafeFile((info and _unsafe(info)) or f"cannot be opened: {err.strerror}") from err
    with os.fdopen(fd, "rb") as f:
        problem = _unsafe(os.fstat(fd))
        if problem is not None:
            raise UnsafeFile(problem)
        return f.read()


def _unsafe(info: os.stat_result) -> str | None:
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a device, pipe or socket)"
    if info.st_uid != os.geteuid():
        return f"owned by user id {info.st_uid}, not by the agent's user ({os.geteuid()})"
    if info.st_nlink != 1:      # a hard link: the same file under another name, perhaps outside the outbox
        return f"a file with {info.st_nlink} names (hard links)"
    return None


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except OSError:
        return None


def _described(path: Path, problem: str) -> str:
    if problem == "a symbolic link":
        with contextlib.suppress(OSError):    # gone meanwhile: then it is just "a symbolic link"
            problem = f"a symbolic link to {os.readlink(path)}"
    return (f"UNSAFE_FILE: {path.name} is {problem}; the agent sends only regular files of its own user "
            "dropped in the outbox itself, and this one was not sent")


def own_folders(*folders: Path) -> list[Unsafe]:
    """Make the agent's folders inside the outbox (processed/, failed/). Whatever the ERP left under one of
    those names that is not a folder (a file called `processed`, a link) is first set aside under a dot name,
    which no scan picks up, and returned, to be refused into failed/ under its own name like any unsafe entry
    (set aside earlier and not yet refused, after a crash, it is returned again)."""
    for folder in folders:
        info = _lstat(folder)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            os.replace(folder, _aside(folder))
            _sync_dir(folder.parent)
        folder.mkdir(parents=True, exist_ok=True)
    return [Unsafe(_aside(f), f.name, f"UNSAFE_FILE: {f.name} is in the way of the agent's own folder "
                   f"{f.name}/ in the outbox; it was not sent: give it another name and drop it again")
            for f in folders if os.path.lexists(_aside(f))]


def _aside(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.in-the-way")


def write_atomically(folder: Path, name: str, data: bytes) -> Path:
    """Write, fsync, rename, fsync the folder: a reader sees the whole file or none, also after a crash.
    Writing the same name again replaces it, so a repeated delivery never makes a second file. The temporary
    file is made afresh (whatever had its name removed first, a link as the link), never written through a
    link someone with access to the folder put there."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    temp = folder / f".{name}.tmp"
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)   # as open() would: the umask decides
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, target)
    _sync_dir(folder)
    return target


def same_bytes(path: Path, data: bytes) -> bool:
    try:
        return read_own(path) == data
    except (FileNotFoundError, IsADirectoryError, UnsafeFile):
        return False


def free_name(folder: Path, name: str, sha256: str) -> str:
    """`name`, unless a different file already has it there: then the name with a piece of our hash."""
    if not os.path.lexists(folder / name):     # a dangling link there holds the name too
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


def move_failed(file: OutboxFile | Unsafe, failed: Path, reason: str) -> Path:
    """The reason first, then the file: after a crash in between, the file is still there to move again.
    An unsafe entry is moved as it is (a link stays a link, pointing where it pointed)."""
    failed.mkdir(parents=True, exist_ok=True)
    tag = file.sha256 if isinstance(file, OutboxFile) else hashlib.sha256(reason.encode("utf-8")).hexdigest()
    name = free_name(failed, file.name, tag)
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
