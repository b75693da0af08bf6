"""Writing result files atomically (temp file in the same folder, then rename): never half a file."""

from __future__ import annotations

import csv
import glob
import io
import os
import socket
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nas._errors import NasError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_usual_permissions(path: str | os.PathLike[str]) -> None:
    """mkstemp creates files 0600; a result file gets what any other file the user writes gets."""
    os.chmod(path, 0o666 & ~_umask())


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running (another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):  # not a pid at all
        return False
    return pid > 0


_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"


def temp_beside(path: Path) -> tuple[int, str]:
    """An open temp file (``mkstemp``: an unpredictable name) in ``path``'s folder, for writing ``path``
    atomically. Its name carries this machine and process, so the temp files a killed writer of ``path``
    left are recognised and removed here (else every kill would leave one forever)."""
    stem = f".{path.name}.{_HOST}-"
    for stale in glob.glob(glob.escape(str(path.parent / stem)) + "*.tmp"):
        pid = Path(stale).name.removeprefix(stem).split(".", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            Path(stale).unlink(missing_ok=True)
    return tempfile.mkstemp(prefix=f"{stem}{os.getpid()}.", suffix=".tmp", dir=path.parent)


def file_in_the_way(path: str | os.PathLike[str]) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is a file (nothing can be written under it)."""
    for folder in Path(path).parents:
        if folder.exists():
            return None if folder.is_dir() else folder
    return None


def check_file_out(path: Path, *, flag: str, example: str) -> None:
    """Refuse, before any work, an output file path that cannot be one: a folder, or under a file."""
    if path.is_dir():
        raise NasError(f"{flag} {path}: is a folder; give a file name such as {path / example}")
    if (blocker := file_in_the_way(path)) is not None:
        raise NasError(f"{flag} {path}: {blocker} is a file, not a folder; choose another path")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        give_usual_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_csv(path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    write_bytes_atomic(path, buffer.getvalue())
