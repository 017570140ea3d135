"""A replica's log as the job server keeps and serves it, by kubelet's rules: stdout and stderr together in
`<name>.log`, rotated when it would pass `max_bytes` (kubelet's containerLogMaxSize, 10 MiB) into `<name>.log.1` ..
`<name>.log.<max_files - 1>` (containerLogMaxFiles, 5, the current file included; the oldest is dropped), so a job
that writes without end fills at most max_bytes x max_files of disk (and its times index, a line per second of
output). Beside the log, `<name>.log.times` holds one
line `SECOND OFFSET` for each second in which output came, so `sinceSeconds` finds its place without reading the
log. Readers start from the end or from a known offset (`tail_offset`, `since_offset`, `read`): a request never loads
more than it returns."""

import os
import time
from dataclasses import dataclass

BLOCK = 64 * 1024
TIMES = ".times"


@dataclass(frozen=True)
class Rotation:
    max_bytes: int = 10 * 1024 * 1024
    max_files: int = 5


def _open(path):
    """A new file at `path` (truncated, 0600, never through a link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, 0o600), "wb")


class Writer:
    """One replica's log, written by its two pumps (stdout, stderr) in whole lines under `lock`, closed by the last
    of `users`. Raises OSError from the constructor when the file cannot be made."""

    def __init__(self, path, rotation, lock, users=2, clock=time.time):
        self.path, self.rotation, self.lock, self.users, self.clock = path, rotation, lock, users, clock
        self._begin()

    def _begin(self):
        self.handle, self.times = _open(self.path), _open(self.path + TIMES)
        self.size, self.second = 0, None

    def _rotate(self):
        self.handle.close()
        self.times.close()
        keep = self.rotation.max_files - 1
        if keep < 1:
            os.unlink(self.path)
        else:
            for i in range(keep, 1, -1):
                older = f"{self.path}.{i - 1}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{i}")
            os.replace(self.path, f"{self.path}.1")
        self._begin()

    def write(self, raw):
        with self.lock:
            if self.size and self.size + len(raw) > self.rotation.max_bytes:
                self._rotate()
            second = int(self.clock())
            if second != self.second:
                self.times.write(f"{second} {self.size}\n".encode())
                self.second = second
            self.handle.write(raw)
            self.size += len(raw)

    def flush(self):
        with self.lock:
            self.handle.flush()
            self.times.flush()

    def close(self):
        with self.lock:
            self.users -= 1
            if self.users == 0:
                self.handle.close()
                self.times.close()


def begin_again(path):
    """Before a replica's next run: its last log becomes `<name>.previous.log` (with its times), its rotated files
    go."""
    base = path[:-len(".log")] if path.endswith(".log") else path
    for suffix in ("", TIMES):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, f"{base}.previous.log{suffix}")
    folder, name = os.path.split(path)
    for entry in os.listdir(folder or "."):
        if entry.startswith(name + ".") and entry[len(name) + 1:].isdigit():
            os.unlink(os.path.join(folder, entry))


def size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def tail_offset(path, lines):
    """Where the last `lines` lines of `path` begin (its size for 0), reading back from the end a block at a time."""
    end = size(path)
    if lines <= 0 or end == 0:
        return end
    found = 0
    with open(path, "rb") as handle:
        position = end
        while position > 0:
            start = max(0, position - BLOCK)
            handle.seek(start)
            block = handle.read(position - start)
            index = len(block)
            while True:
                index = block.rfind(b"\n", 0, index)
                if index < 0:
                    break
                if start + index != end - 1:  # a final newline ends the last line, it begins none
                    found += 1
                    if found == lines:
                        return start + index + 1
            position = start
    return 0


def since_offset(path, since, now=None):
    """The offset of the first output written at or after `now - since` seconds (the log's size if none), from its
    times file; 0 when there is none."""
    now = time.time() if now is None else now
    threshold = int(now - since)
    try:
        with open(path + TIMES, "rb") as handle:
            for line in handle:
                second, _, offset = line.partition(b" ")
                if int(second) >= threshold:
                    return int(offset)
    except (FileNotFoundError, ValueError):
        return 0
    return size(path)


def read(path, offset=0, limit=None):
    """Bytes of `path` from `offset`, at most `limit`; b"" when it does not exist."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(-1 if limit is None else limit)
    except FileNotFoundError:
        return b""
