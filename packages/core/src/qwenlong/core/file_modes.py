"""Written files get the mode an ordinary `open` gives them: 0666 less the umask.

safetensors' `save_file`, which transformers' `save_pretrained` calls for the weights, writes
through a temporary file created 0600 and renames it into place. A model folder written by
`save_pretrained` (`qwenlong models tiny`, a run's `model/`) thus had every file readable by
the group and others under the usual umask 022 except its weights, so a shared model folder
could not be loaded by anyone else. `apply_umask` gives such files back the mode the user's
umask asks for. (Our own writers, `safetensors_io`, open files normally and need nothing.)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path


def current_umask() -> int:
    """The process's umask: read from /proc where Linux shows it, else by setting and restoring
    it (which briefly changes it for every thread)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(paths: Iterable[Path]) -> None:
    """Set each regular file in `paths` to 0666 less the umask (0644 under umask 022)."""
    mode = 0o666 & ~current_umask()
    for path in paths:
        if path.is_file() and not path.is_symlink():
            path.chmod(mode)
