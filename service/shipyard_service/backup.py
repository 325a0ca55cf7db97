"""`shipyard admin backup DIR` and `shipyard admin restore DIR`.

A backup is a folder: the store (SQLite's online backup API, or `pg_dump` for PostgreSQL),
the data store's objects, the step archives and execution files, and the keys. It is taken
while the server runs: the store first, as one snapshot, then the files, so every file the
snapshot refers to is copied (unless deleted while the backup runs). It is written beside
its destination and renamed at the end, so a half-made backup never looks whole.

Restore brings a stopped server (any data folder, a fresh one included) back to a backup:
the same store, data store, files and keys. Step environments are not in a backup (a
virtualenv only works at the path it was built at): steps whose environment is missing
are rebuilt when the server starts."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from .config import Settings
from .errors import BadRequest

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "store.sqlite"
PG_FILE = "store.pgdump"
DATASTORE_DIR = "datastore"
# Beside the store under DATA_DIR: step code archives and execution files (Artifacts).
FILE_TREES = ("steps", "executions")
# The keys: signing (tokens, URLs), encryption at rest, the first credentials, Git hosts.
KEY_FILES = ("secret.key", "encryption.key", "credentials.json", "ssh/known_hosts")
PG_TIMEOUT_S = 3600


class BackupError(BadRequest):
    pass


def backup(settings: Settings, target: Path) -> dict:
    """Copy the platform of `settings` into the new folder `target`; the manifest."""
    target = Path(target).resolve()
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: back up into a new folder")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.time()
    engine = _dump_store(settings.database_url, partial)
    files = sum(_copy_tree(settings.data_dir / tree, partial / tree) for tree in FILE_TREES)
    objects = _copy_datastore_out(settings, partial / DATASTORE_DIR)
    keys = [name for name in KEY_FILES if _copy_key(settings.data_dir / name, partial / name)]
    manifest = {"format": FORMAT, "created_at": started, "store": engine,
                "datastore": settings.datastore, "files": files, "objects": objects,
                "keys": keys, "seconds": round(time.time() - started, 3)}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if target.exists():
        target.rmdir()
    partial.rename(target)
    return {"backup": str(target), **manifest}


def restore(settings: Settings, source: Path) -> dict:
    """Bring the stopped platform of `settings` back to the backup in `source`."""
    source = Path(source).resolve()
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source} holds no backup ({MANIFEST}: {exc})") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not {FORMAT}")
    _refuse_if_running(settings)
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    # Keys first: the data store signs with the restored secret.
    for name in manifest["keys"]:
        _copy_key(source / name, data_dir / name)
    settings.secret_key = ""
    _load_store(settings.database_url, source, manifest["store"])
    for tree in FILE_TREES:
        shutil.rmtree(data_dir / tree, ignore_errors=True)
        _copy_tree(source / tree, data_dir / tree)
    objects = _copy_datastore_in(settings, source / DATASTORE_DIR)
    rebuilt = _mark_missing_environments(settings)
    return {"restored": str(source), "data_dir": str(data_dir), "objects": objects,
            "steps_to_rebuild": rebuilt}


# The store ------------------------------------------------------------------------------

def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def _dump_store(url: str, folder: Path) -> str:
    path = _sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise BackupError(f"no store at {path}")
        # The online backup API copies a consistent snapshot while the server writes.
        src = sqlite3.connect(path, timeout=30)
        dst = sqlite3.connect(folder / SQLITE_FILE)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return "sqlite"
    # pg_dump reads in one repeatable-read snapshot: consistent while the server writes.
    _run_pg("pg_dump", ["--format=custom", "--no-owner", "--file", str(folder / PG_FILE),
                        "--dbname", _pg_url(url)])
    return "postgresql"


def _load_store(url: str, folder: Path, engine: str) -> None:
    path = _sqlite_path(url)
    if (path is not None) != (engine == "sqlite"):
        raise BackupError(f"this backup holds a {engine} store; the server's is {url.split(':')[0]}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        src = sqlite3.connect(folder / SQLITE_FILE)
        dst = sqlite3.connect(path)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return
    _run_pg("pg_restore", ["--clean", "--if-exists", "--no-owner", "--single-transaction",
                           "--dbname", _pg_url(url), str(folder / PG_FILE)])


def _pg_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"postgresql{sep}{rest}" if scheme in ("postgres", "postgresql") else url


def _pg_tool(name: str) -> str:
    """The newest installed PostgreSQL client tool (Debian keeps them per version)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    tool = found[-1] if found else shutil.which(name)
    if tool is None:
        raise BackupError(f"{name} is needed for a PostgreSQL store (apt-get install postgresql-client)")
    return tool


def _run_pg(name: str, args: list[str]) -> None:
    done = subprocess.run([_pg_tool(name), *args], capture_output=True, text=True,
                          timeout=PG_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise BackupError(f"{name} failed: {done.stderr.strip()[-2000:]}")


# Files ----------------------------------------------------------------------------------

def _copy_tree(src: Path, dst: Path) -> int:
    """Files under `src` into `dst`; a file removed meanwhile is skipped. The count."""
    count = 0
    for root, _dirs, names in os.walk(src):
        for name in names:
            path = Path(root) / name
            if path.is_symlink():
                continue
            out = dst / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(path, out)
            except FileNotFoundError:
                continue
            count += 1
    return count


def _copy_key(src: Path, dst: Path) -> bool:
    if not src.is_file():
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(src.read_bytes())
    return True


def _datastore(settings: Settings):
    from .datastore import make_datastore

    return make_datastore(settings, settings.load_or_create_secret())


def _copy_datastore_out(settings: Settings, folder: Path) -> int:
    store = _datastore(settings)
    count = 0
    for key in store.iter_keys(""):
        out = folder / key
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with store.open_read(key) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 4 * 1024 * 1024)
        except FileNotFoundError:
            out.unlink(missing_ok=True)  # deleted while the backup ran
            continue
        count += 1
    return count


def _copy_datastore_in(settings: Settings, folder: Path) -> int:
    store = _datastore(settings)
    wanted = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    for key in list(store.iter_keys("")):
        if key not in wanted:
            store.delete(key)
    for key in sorted(wanted):
        with open(folder / key, "rb") as src:
            store.write(key, src)
    return len(wanted)


# Step environments ----------------------------------------------------------------------

def _mark_missing_environments(settings: Settings) -> int:
    if settings.orchestrator != "local":
        return 0  # cluster steps are images in the registry, not part of the data folder
    from .domain import steps
    from .orchestrators.local.envs import EnvironmentBuilder
    from .store import db_session, init_db

    init_db(settings.database_url)  # also brings an older backup's store up to date
    envs = EnvironmentBuilder(settings.data_dir / "envs", settings.uv_cache_dir)
    with db_session():
        return steps.rebuild_where_missing(lambda key: envs.is_built(key))


def _refuse_if_running(settings: Settings) -> None:
    """The data folder's server, at the URL it last recorded, must not answer."""
    import requests

    try:
        url = json.loads((settings.data_dir / "credentials.json").read_text())["control_url"]
    except (OSError, ValueError, KeyError):
        return  # a fresh folder: no server of its own
    try:
        answered = requests.get(url + "/healthz", timeout=1).ok
    except requests.RequestException:
        answered = False
    if answered:
        raise BackupError(f"the server of {settings.data_dir} answers at {url}: stop it first")
