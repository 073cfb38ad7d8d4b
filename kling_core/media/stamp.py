"""A file's stamp: its path and what changes when the file does, so that something learnt about
the file (a probe, a proven ffmpeg) is reused only while the stamp stays the same."""

from __future__ import annotations

import os

Stamp = tuple[str, int, int, int, int, int]  # path, device, inode, size, mtime ns, ctime ns


def file_stamp(path: str, st: os.stat_result) -> Stamp:
    """``path`` with ``st``'s device, inode, size, mtime and ctime (ctime cannot be set back)."""
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
