"""Rules for step code fetched from Git, and for the step settings that go with it:
repository URLs, branch/tag names, deploy keys, included paths, Debian package names.

Pure checks (no I/O). They matter for safety too: every value here ends up as an argument
of `git`, `ssh` or `apt-get`, so nothing may look like an option or escape a folder."""

from __future__ import annotations

import posixpath
import re

from cryptography.hazmat.primitives import serialization

from ..errors import BadRequest

_USER = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_HOST = r"[A-Za-z0-9][A-Za-z0-9.-]*"
# git@github.com:owner/repo.git (the form the documentation asks for)
SCP_URL = re.compile(rf"^(?P<user>{_USER})@(?P<host>{_HOST}):(?P<path>[A-Za-z0-9_~./][^\s\\]*)$")
# ssh://git@host:2222/owner/repo.git (needed for a port other than 22)
SSH_URL = re.compile(
    rf"^ssh://(?:(?P<user>{_USER})@)?(?P<host>{_HOST}|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{{1,5}}))?"
    r"/(?P<path>[^\s\\]+)$"
)
DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$")
MAX_KEY_CHARS = 16_384


def check_repository_url(value: object, field: str = "repository_url") -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{field}' must be a non-empty string", {"field": field})
    value = value.strip()
    match = SCP_URL.match(value) or SSH_URL.match(value)
    if match is None or ".." in match.group("path").split("/"):
        raise BadRequest(
            f"Invalid repository URL {value!r}: use the SSH URL of the repository, "
            "like git@github.com:my-account/my-repo.git (or ssh://git@host:port/path.git)",
            {"field": field, "value": value},
        )
    port = match.groupdict().get("port")
    if port is not None and not 0 < int(port) < 65536:
        raise BadRequest(f"Invalid port in repository URL {value!r}", {"field": field})
    return value


def check_ref_name(value: object, field: str = "repository_branch") -> str:
    """A branch or tag name as `git check-ref-format --branch` accepts it."""
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{field}' must be a non-empty string", {"field": field})
    bad = (
        len(value) > 255
        or value.startswith(("-", "/"))
        or value.endswith(("/", ".", ".lock"))
        or value == "@"
        or any(token in value for token in ("..", "@{", "//"))
        or any(part.startswith(".") for part in value.split("/"))
        or re.search(r"[\x00-\x20\x7f~^:?*\[\\]", value) is not None
    )
    if bad:
        raise BadRequest(f"Invalid branch or tag name {value!r}", {"field": field, "value": value})
    return value


def check_deploy_key(value: object, field: str = "repository_deploy_key") -> str:
    """A private SSH key without passphrase, normalised for `ssh -i` (LF line ends, final
    newline). The documentation's `ssh-keygen -m PEM -t rsa -b 4096` keys pass; OpenSSH-format
    keys (any type ssh supports) pass too. Messages never quote the value."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{field}' must be a non-empty string", {"field": field})
    if len(value) > MAX_KEY_CHARS:
        raise BadRequest(f"'{field}' is too long to be a deploy key", {"field": field})
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip() + "\n"
    if not text.startswith("-----BEGIN ") or "PRIVATE KEY-----" not in text.splitlines()[0]:
        raise BadRequest(
            f"'{field}' must be a private key, from '-----BEGIN RSA PRIVATE KEY-----' to "
            "'-----END RSA PRIVATE KEY-----' (generate one with "
            "`ssh-keygen -m PEM -t rsa -b 4096 -f KEY -q -N \"\" -C \"\"`)",
            {"field": field},
        )
    try:
        if "OPENSSH" in text.splitlines()[0]:
            serialization.load_ssh_private_key(text.encode(), password=None)
        else:
            # Only the format is checked here (ssh uses the key); RSA's consistency check
            # would cost ~0.4 s for a 4096-bit key.
            serialization.load_pem_private_key(text.encode(), password=None,
                                               unsafe_skip_rsa_key_validation=True)
    except TypeError as exc:  # cryptography's way of saying "encrypted"
        raise BadRequest(
            f"'{field}' is protected by a passphrase: the platform needs a key without one "
            "(ssh-keygen ... -N \"\")",
            {"field": field},
        ) from exc
    except Exception as exc:  # ValueError, UnsupportedAlgorithm: never echo the key
        raise BadRequest(f"'{field}' is not a readable private key", {"field": field}) from exc
    return text


def check_relative_path(value: object, field: str) -> str:
    """A path inside the step's files (leading '/' allowed, meaning the root)."""
    if not isinstance(value, str):
        raise BadRequest(f"'{field}' must be a string", {"field": field})
    if "\\" in value or "\x00" in value or ".." in value.split("/"):
        raise BadRequest(f"'{field}' must stay inside the step's files: {value!r}",
                         {"field": field, "value": value})
    return value


def included_paths(items: list[str] | None) -> list[str] | None:
    """Normalised included folders; None means the whole repository ('/' or null)."""
    if items is None:
        return None
    paths: list[str] = []
    for item in items:
        check_relative_path(item, "included_folders")
        normalised = posixpath.normpath(item.strip().lstrip("/")) if item.strip("/ ") else "."
        if normalised == ".":
            return None
        if normalised not in paths:
            paths.append(normalised)
    return paths


def check_packages(value: object, field: str = "system_dependencies") -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"'{field}' must be a list of strings", {"field": field})
    bad = [v for v in value if not DEBIAN_PACKAGE.fullmatch(v)]
    if bad:
        raise BadRequest(
            f"Invalid Debian package names in '{field}': {bad} (lowercase letters, digits, "
            "'+', '-', '.', at least 2 characters)",
            {"field": field, "values": bad},
        )
    return value
