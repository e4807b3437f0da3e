"""Safe reading of input files and checks of output paths.

Rules (docs/inputs.md):

* An input (market, scenario set, flows CSV) must be a regular file of at most
  :data:`MAX_INPUT_BYTES`; directories, FIFOs, devices and sockets are refused without being
  opened for reading (no blocking, no unbounded read). Text is UTF-8 (a byte-order mark is
  accepted).
* A path written *inside* a file (``market = "..."`` in a scenario set, ``flows_file`` in a
  market) is relative to that file's folder and must stay in it after symlinks are resolved:
  absolute paths and ``..`` that leave the folder are refused. Paths given on the command line
  or to the Python API are the user's own choice and are not restricted.
* An output path must not be one of the inputs, a directory, or in a folder that cannot be
  created or written; this is checked before any work is done.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from tradepolicy.errors import InputError

#: Largest input file read (bytes); shipped markets are below 100 KB.
MAX_INPUT_BYTES = 20 * 1024 * 1024


def exists(path: Path) -> bool:
    """``path.exists()`` that is False (not an exception) for over-long or NUL-holding names."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bytes(path: Path, source: str | None = None, field: str = "") -> bytes:
    """Read a regular input file of at most :data:`MAX_INPUT_BYTES`.

    Errors are an :class:`InputError` for ``source`` (default: the file itself) and ``field``.
    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a
    FIFO or device swapped in after a check is still refused.
    """
    src = source or str(path)
    where = f"{path}: " if source else ""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(src, [(field, f"{where}file does not exist")]) from None
    except ValueError:  # NUL in the name
        raise InputError(src, [(field, f"{where}not a valid file name")]) from None
    except OSError as exc:
        raise InputError(src, [(field, f"{where}cannot be read ({exc.strerror})")]) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(src, [(field, f"{where}is {_kind(st.st_mode)}, not a regular file")])
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputError(src, [(field, f"{where}cannot be read ({exc.strerror})")]) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(src, [(field, f"{where}is {_kind(st.st_mode)}, not a regular file")])
        if st.st_size > MAX_INPUT_BYTES:
            raise InputError(src, [(field, _too_large(where, st.st_size))])
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_INPUT_BYTES:  # grew while being read
                raise InputError(src, [(field, _too_large(where, total))])
            chunks.append(chunk)
    except OSError as exc:
        raise InputError(src, [(field, f"{where}cannot be read ({exc.strerror})")]) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def _too_large(where: str, size: int) -> str:
    return (
        f"{where}file is {size / 2**20:,.1f} MB; input files are limited to "
        f"{MAX_INPUT_BYTES // 2**20} MB"
    )


def read_text(path: Path, source: str | None = None, field: str = "") -> str:
    """:func:`read_bytes` decoded as UTF-8 (a leading byte-order mark is dropped)."""
    data = read_bytes(path, source, field)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = f"{path}: " if source else ""
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            source or str(path),
            [
                (
                    field,
                    f"{where}not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                    "save the file as UTF-8",
                )
            ],
        ) from None


def resolve_reference(ref: str, referrer: Path | None, field: str, source: str) -> Path:
    """The file a path written inside ``referrer`` points to.

    ``ref`` is relative to the referrer's folder (the working directory when the definition
    was not read from a file) and must stay in that folder once symlinks are resolved.
    """
    base = (referrer.parent if referrer is not None else Path.cwd()).resolve()
    allowed = (
        f"give a path relative to {base} that stays in it, or pass the file on the command "
        "line (`--market PATH`)"
    )
    if not ref.strip():
        raise InputError(source, [(field, "empty path")])
    if "\x00" in ref:
        raise InputError(source, [(field, "a path cannot contain a NUL character")])
    if Path(ref).is_absolute() or Path(ref).drive:
        raise InputError(source, [(field, f"absolute path {ref!r} not allowed; {allowed}")])
    try:
        target = (base / ref).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loop
        raise InputError(source, [(field, f"{ref!r} cannot be resolved ({exc})")]) from None
    if not target.is_relative_to(base):
        raise InputError(
            source, [(field, f"{ref!r} resolves to {target}, outside {base}; {allowed}")]
        )
    return target


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (an existing file, or the same resolved path)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output(path: Path, inputs: Iterable[Path] = (), option: str = "-o") -> None:
    """Refuse an output path that would overwrite an input or cannot be written.

    Raises :class:`InputError` naming the option; nothing is created.
    """
    for inp in inputs:
        if same_file(path, inp):
            raise InputError(
                f"{option} {path}",
                [
                    (
                        "",
                        f"is the input file {inp}; writing would overwrite it "
                        "(choose another path)",
                    )
                ],
            )
    if path.is_dir():
        raise InputError(f"{option} {path}", [("", "is a directory; give a file name")])
    if path.exists() and not path.is_file():
        raise InputError(f"{option} {path}", [("", "exists and is not a regular file")])
    folder = path.parent
    while not folder.exists():  # the folders to be created must be creatable
        if folder.parent == folder:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(
            f"{option} {path}", [("", f"{folder} is not a directory; the file cannot be created")]
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(
            f"{option} {path}",
            [("", f"folder {folder} is not writable ({os.strerror(errno.EACCES)})")],
        )
