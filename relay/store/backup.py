"""`porch backup DEST`: a consistent copy of the SQLite database while the relay runs.

Copying the file with `cp` can catch a transaction half-written, and misses whatever
still sits in the -wal file. SQLite's online backup API copies pages instead, and we
run it inside one read transaction on the source: the database is in WAL mode, so that
reader never blocks the relay's writer, and the copy is one snapshot. Without the
pinned snapshot the backup API starts over whenever another connection commits between
two steps, which under steady traffic is forever. The cost: the relay cannot recycle
its WAL file while the copy runs, so the WAL grows by what is written meanwhile.

The copy goes to a temporary file beside DEST, is checked with `PRAGMA
integrity_check`, and only then takes DEST's name: DEST is a complete, verified
database or is not there at all.

The photos and files its rows name go to DEST.blobs/, laid out as the data dir's
blobs/ (restoring is putting both back), hard-linked where the file system allows (a
blob never changes: a link costs no space) and copied otherwise. They are written, and
made durable, before DEST takes its name: a backup cut off at any point never leaves a
DEST naming a file DEST.blobs/ lacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relay.attachments.blobs import CHUNK, DIGEST
from relay.errors import CommandError, ConfigError

# 1,024 pages of 4 KiB: 4 MiB per step. Between steps the copy pauses briefly, so a
# large database does not monopolise the disk the relay fsyncs every commit to.
PAGES_PER_STEP = 1024
PAUSE_BETWEEN_STEPS = 0.005  # seconds: ~1.3 s added per GiB

Progress = Callable[[int, int, int], object]  # sqlite3's (status, remaining, total)


@dataclass(frozen=True)
class Files:
    """What went to DEST.blobs/."""

    count: int = 0
    size: int = 0  # bytes
    # Named by the copy's rows but not in blobs/ (or not with their bytes): erased
    # while the backup ran, or lost. Their rows are in the copy; downloads say 404.
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Copied:
    source: Path
    dest: Path
    threads: int
    messages: int
    size: int  # bytes
    files: Files = Files()

    def summary(self) -> str:
        lines = [
            f"Copied {self.source} to {self.dest}: {self.threads} threads, "
            f"{self.messages} messages, {human_size(self.size)}; {self.files.count} files "
            f"({human_size(self.files.size)}) in {blobs_of(self.dest)}; integrity check ok."
        ]
        if self.files.missing:
            lines.append(
                f"Note: {len(self.files.missing)} file(s) its rows name were not in blobs/ "
                f"(erased while it ran, or lost): {', '.join(self.files.missing)}"
            )
        return "\n".join(lines)


def blobs_of(dest: Path) -> Path:
    """Where the backup DEST keeps its photos and files."""
    return dest.with_name(dest.name + ".blobs")


def backup(
    source: Path,
    dest: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    blobs: Path | None = None,
) -> Copied:
    """Copy the database at `source` to `dest`, and the blobs (from `blobs`, by default
    blobs/ beside it) its rows name to DEST.blobs/. Bad arguments raise ConfigError
    (exit 2), a copy that fails or does not verify raises CommandError (exit 1).
    `progress`, called after each step, lets tests write between steps."""
    check_paths(source, dest, force)
    blobs = blobs if blobs is not None else source.parent / "blobs"
    try:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as error:
        raise ConfigError(f"cannot write in {dest.parent}: {error.strerror}") from None
    os.close(fd)
    temp = Path(name)
    try:
        threads, messages = copy_snapshot(source, temp, progress)
        verify(temp)
        size = temp.stat().st_size
        named = named_blobs(temp)
        files = copy_blobs(named, blobs, blobs_of(dest))  # first: DEST names only what is there
        publish(temp, dest, force)
    finally:
        temp.unlink(missing_ok=True)
    prune(blobs_of(dest), set(named))  # what a replaced DEST named, and this one does not
    return Copied(source, dest, threads, messages, size, files)


def check_paths(source: Path, dest: Path, force: bool) -> None:
    try:
        _check_paths(source, dest, force)
    except OSError as error:  # e.g. a directory we may not even look into
        raise ConfigError(f"cannot look at {error.filename}: {error.strerror}") from None


def _check_paths(source: Path, dest: Path, force: bool) -> None:
    if not source.is_file():
        raise ConfigError(f"no database at {source} (--data-dir or --database)")
    if not dest.parent.is_dir():
        raise ConfigError(f"the directory {dest.parent} does not exist (for DEST {dest})")
    if dest.is_dir():
        raise ConfigError(f"{dest} is a directory: name the backup file, e.g. {dest}/porch.sqlite3")
    if dest.exists() and dest.resolve() == source.resolve():
        raise ConfigError(f"{dest} is the database itself: choose another DEST")
    if dest.exists() and not force:
        raise ConfigError(f"{dest} already exists (--force replaces it)")
    if blobs_of(dest).exists() and not blobs_of(dest).is_dir():
        raise ConfigError(f"{blobs_of(dest)} is not a directory: it is where DEST's files go")


def copy_snapshot(source: Path, temp: Path, progress: Progress | None) -> tuple[int, int]:
    """Copy one snapshot of `source` into `temp`; its thread and message counts."""
    # mode=rw never creates an empty database at a mistyped path. Not mode=ro: that
    # leaves -wal and -shm files behind, owned by whoever ran the backup, which a relay
    # running as another user then cannot open; read-write, the last connection out
    # removes them. We only ever read (a read-only file still opens, read-only).
    uri = source.resolve().as_uri() + "?mode=rw"
    try:
        src = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as error:
        raise ConfigError(f"cannot open the database {source}: {error}") from None
    try:
        try:
            src.execute("BEGIN")  # the snapshot: held until the copy is done
            threads = src.execute("SELECT COUNT(*) FROM threads").fetchone()[0]
            messages = src.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        except sqlite3.Error as error:
            raise ConfigError(f"cannot read {source} as a Porch database: {error}") from None

        def step(status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(status, remaining, total)
            if remaining:
                time.sleep(PAUSE_BETWEEN_STEPS)

        with contextlib.closing(sqlite3.connect(temp)) as copy:
            try:
                src.backup(copy, pages=PAGES_PER_STEP, progress=step)
                # One self-contained file (no -wal beside it); the relay sets WAL again.
                copy.execute("PRAGMA journal_mode = DELETE")
            except sqlite3.Error as error:
                raise CommandError(f"the copy to {temp} failed: {error}") from None
        src.execute("COMMIT")
    finally:
        src.close()
    return int(threads), int(messages)


def verify(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as copy:
        problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise CommandError(f"the copy failed its integrity check: {'; '.join(problems[:3])}")


def named_blobs(copy: Path) -> list[str]:
    """The digests of the blobs the copy's attachments rows name."""
    with contextlib.closing(sqlite3.connect(copy)) as db:
        try:
            rows = db.execute("SELECT DISTINCT digest FROM attachments ORDER BY 1").fetchall()
        except sqlite3.OperationalError:  # a database from before attachments (0009)
            return []
    return [row[0] for row in rows if DIGEST.fullmatch(row[0])]


def copy_blobs(digests: list[str], source: Path, dest: Path) -> Files:
    """Each blob into `dest` under its name, durable before this returns. A name taken
    already holds those bytes: every file is written whole under another name first."""
    count = total = 0
    missing: list[str] = []
    touched: set[Path] = set()
    try:
        dest.mkdir(exist_ok=True)
        for digest in digests:
            original = source / digest[:2] / digest
            target = dest / digest[:2] / digest
            if target.is_file():  # an earlier backup to this DEST, or one cut off
                count, total = count + 1, total + target.stat().st_size
                continue
            target.parent.mkdir(exist_ok=True)
            try:
                os.link(original, target)  # the same file: nothing to write
            except FileNotFoundError:
                missing.append(digest)
                continue
            except OSError:  # another file system, or one without hard links: copy
                if not original.is_file():
                    missing.append(digest)
                    continue
                if not copy_verified(original, target, digest):
                    missing.append(digest)
                    continue
            touched.add(target.parent)
            count, total = count + 1, total + target.stat().st_size
        for directory in (*touched, dest):
            fsync_directory(directory)
    except OSError as error:
        raise CommandError(f"cannot write the files to {dest}: {error.strerror}") from None
    return Files(count, total, tuple(missing))


def copy_verified(original: Path, target: Path, digest: str) -> bool:
    """Copy through a temporary name, checking the bytes; False if they do not match
    their name (nothing written)."""
    temp = target.with_name(f".{digest}.tmp")
    hashed = hashlib.sha256()
    try:
        with original.open("rb") as reader, temp.open("wb") as writer:
            while chunk := reader.read(CHUNK):
                hashed.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        if hashed.hexdigest() != digest:
            return False
        os.replace(temp, target)
        return True
    finally:
        temp.unlink(missing_ok=True)


def prune(dest: Path, named: set[str]) -> None:
    """Remove from DEST.blobs/ what DEST does not name (and temporary files)."""
    with contextlib.suppress(OSError):  # the backup stands: extra files only take space
        for path in dest.glob("??/*"):
            if path.name not in named:
                path.unlink()
        for directory in dest.glob("??"):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()


def fsync_directory(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def publish(temp: Path, dest: Path, force: bool) -> None:
    """Give the verified copy DEST's name in one step, never clobbering a DEST made
    meanwhile unless forced, and make the new name durable."""
    try:
        if force:
            os.replace(temp, dest)
        else:
            try:
                os.link(temp, dest)  # atomic, and fails if DEST appeared meanwhile
            except FileExistsError:
                raise ConfigError(f"{dest} already exists (--force replaces it)") from None
            except OSError:  # a file system without hard links (FAT on a USB drive)
                if dest.exists():
                    raise ConfigError(f"{dest} already exists (--force replaces it)") from None
                os.replace(temp, dest)
        fsync_directory(dest.parent)
    except OSError as error:
        raise CommandError(f"cannot write {dest}: {error.strerror}") from None


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    value = size / 1000
    for unit in ("KB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
