"""The output folder before a run (writable, room to spare) and a disk that fills up during one."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from recipe_engine.errors import UserError

#: errors of the disk rather than of the program: reported as such, the run resumable
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
#: the least free space a run starts with (a MiniLM checkpoint with Adam moments is ~270 MB)
MIN_FREE_BYTES = 512 * 2**20


def check_output_folder(folder: Path, min_free: int = MIN_FREE_BYTES) -> None:
    """``folder`` can be created and written, and its disk has ``min_free`` bytes free."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{folder}: the output folder cannot be written ({exc.strerror or exc}); fix: choose "
                        "another with --out or runtime.output_dir, or fix its permissions") from None
    free = shutil.disk_usage(folder).free
    if free < min_free:
        raise UserError(f"{folder}: only {free / 2**20:.0f} MiB free on its disk, and a run needs about "
                        f"{min_free / 2**20:.0f} MiB (checkpoints, logits); fix: free some space or choose another "
                        "folder with --out")


def disk_error(exc: OSError, recipe_path: str, run_dir: Path | None) -> UserError:
    """A write that failed for lack of space (or a disk that went away) mid-run."""
    where = f" --resume {run_dir}" if run_dir is not None else ""
    return UserError(f"could not write {exc.filename or 'to the run folder'}: {exc.strerror or exc}; every file "
                     "written before is intact (the last good checkpoint included); free some space and "
                     f"continue with: recipe-engine run {recipe_path}{where}")
