"""Where step code comes from when it is not uploaded: Git repositories over SSH.

The domain asks for "the archive of these paths of that ref"; this package does the I/O
(subprocess `git`/`ssh`, temporary files) and answers with the same kind of .tgz a
local-folder upload gives, plus the commit it was taken from."""

from __future__ import annotations

from dataclasses import dataclass

from .git import GitError, GitOptions, checkout
from .selection import select

__all__ = ["FetchedCode", "GitError", "GitOptions", "fetch_git_code"]


@dataclass(frozen=True)
class FetchedCode:
    archive: bytes
    commit_id: str
    branch: str | None  # None when a tag was asked for
    files: list[str]
    size: int


def fetch_git_code(settings, url: str, ref: str | None, deploy_key: str,
                   included: list[str] | None, required: dict[str, tuple[str, str]],
                   max_bytes: int) -> FetchedCode:
    """Clone `ref` of `url` and keep `included` (None = everything) plus `required` paths."""
    with checkout(url, ref, deploy_key, GitOptions.from_settings(settings)) as tree:
        where = f"{url} at {ref or tree.branch or 'its default branch'} (commit {tree.commit_id[:12]})"
        chosen = select(tree.root, included, required, max_bytes, where)
    return FetchedCode(archive=chosen.archive, commit_id=tree.commit_id, branch=tree.branch,
                       files=chosen.files, size=chosen.size)
