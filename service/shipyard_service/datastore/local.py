"""A DataStore on a local folder, with presigned URLs served by api/signed.py.

Layout under the data dir:
    datastore/<project>/<environment>/<path>   objects (root)
    uploads/<upload_id>/meta.json, data, 1.part…  unfinished multipart uploads, outside the
                                                  object namespace so they never list
Objects are written to a temp file in their final folder and renamed, so readers see
either the old or the new object, never a partial one.

A multipart upload writes every part in place into one `data` file, at the part's offset
(parts may arrive in parallel), and `end` renames that file into the namespace: the bytes are
written once, never copied again nor hashed. `<n>.part` records a part's size and ETag once
its bytes are all written.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..bodies import UploadBody
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..signing import InvalidSignature, Signer
from .base import DataStore, ObjectInfo

BUFFER = 1024 * 1024
TMP_PREFIX = ".~shipyard-tmp-"
UPLOAD_MAX_AGE_S = 24 * 3600
DATA_FILE = "data"
MAX_PARTS = 10_000
# Salts keep each kind of token valid for one purpose only.
SALT_OBJECT = "shipyard.datastore.object"
SALT_UPLOAD = "shipyard.datastore.multipart"


def copy_stream(source: BinaryIO, target: BinaryIO) -> int:
    """Copy in 1 MiB blocks."""
    start = target.tell()
    shutil.copyfileobj(source, target, BUFFER)
    return target.tell() - start


class LocalDataStore(DataStore):
    def __init__(self, root: Path, public_url: str, secret: str, url_lifetime_s: int):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = self.root.resolve()
        self.uploads = self.root.parent / "uploads"
        self.public_url = public_url.rstrip("/")
        self.url_lifetime_s = url_lifetime_s
        self._objects = Signer(secret, SALT_OBJECT)
        self._upload_configs = Signer(secret, SALT_UPLOAD)
        # Part requests of one upload arrive in parallel; each updates meta.json. The local
        # store is served by one API process, so a process lock serialises the updates.
        self._meta_lock = threading.Lock()

    # Paths -----------------------------------------------------------------------------
    def path_of(self, key: str) -> Path:
        """The file for a key. Keys are normalised upstream; this re-checks (defence in
        depth) and refuses anything that would resolve outside the root, symlinks included."""
        if not isinstance(key, str) or not key or key.startswith("/") or "\\" in key \
                or "\0" in key:
            raise BadRequest("Invalid object key", {"key": key})
        for segment in key.split("/"):
            if segment in ("", ".", "..") or segment.startswith(TMP_PREFIX) \
                    or len(segment.encode("utf-8", "surrogatepass")) > 255:
                raise BadRequest("Invalid object key", {"key": key})
        path = self.root / key
        real = path.resolve()
        if real == self._real_root or not real.is_relative_to(self._real_root):
            raise BadRequest("Invalid object key", {"key": key})
        return path

    def _file(self, key: str) -> Path:
        path = self.path_of(key)
        if not path.is_file():
            raise NotFound(f"Object '{key}' not found", {"key": key})
        return path

    # Objects ---------------------------------------------------------------------------
    def info(self, key: str) -> ObjectInfo:
        path = self.path_of(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"Object '{key}' not found", {"key": key}) from None
        if not path.is_file():
            raise NotFound(f"Object '{key}' not found", {"key": key})
        return _info(key, stat)

    def open_read(self, key: str) -> BinaryIO:
        try:
            return open(self._file(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"Object '{key}' not found", {"key": key}) from None

    def write(self, key: str, stream: BinaryIO) -> int:
        return self.write_with(key, lambda out: copy_stream(stream, out))

    def write_with(self, key: str, fill: Callable[[BinaryIO], int]) -> int:
        """Replace the object with what `fill(out)` writes (it returns the size); nothing
        changes if it raises."""
        return self._atomic_write(key, self.path_of(key), fill)

    def delete(self, key: str) -> None:
        path = self._file(key)
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFound(f"Object '{key}' not found", {"key": key}) from None
        self._prune_empty_dirs(path.parent)

    def list(self, prefix: str, start_after: str | None, limit: int) -> list[ObjectInfo]:
        if limit <= 0:
            return []
        # Walk from the deepest folder named entirely by the prefix; filter the rest.
        folder, _, _ = prefix.rpartition("/")
        base = self.root / folder if folder else self.root
        try:
            real = base.resolve()
        except OSError:
            return []
        if not real.is_dir() or not (real == self._real_root
                                     or real.is_relative_to(self._real_root)):
            return []
        result: list[ObjectInfo] = []
        for key, entry in self._walk(base, folder + "/" if folder else "", start_after):
            if not key.startswith(prefix):
                if key > prefix:
                    break  # keys come sorted: nothing later can start with the prefix
                continue
            try:
                result.append(_info(key, entry.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue  # deleted while listing
            if len(result) >= limit:
                break
        return result

    def _walk(self, folder: Path, key_prefix: str,
              start_after: str | None) -> Iterator[tuple[str, os.DirEntry]]:
        """Files under folder in key order. A folder sorts as 'name/', which makes the
        depth-first walk produce exactly the lexicographic order of the full keys."""
        try:
            with os.scandir(folder) as it:
                entries = [e for e in it if not e.name.startswith(TMP_PREFIX)]
        except (FileNotFoundError, NotADirectoryError):
            return
        decorated = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                decorated.append((key_prefix + entry.name + "/", True, entry))
            elif is_file:
                decorated.append((key_prefix + entry.name, False, entry))
        decorated.sort(key=lambda item: item[0])
        for key, is_dir, entry in decorated:
            if is_dir:
                # Skip whole folders whose keys all sort before start_after.
                if start_after is not None and key < start_after \
                        and not start_after.startswith(key):
                    continue
                yield from self._walk(Path(entry.path), key, start_after)
            elif start_after is None or key > start_after:
                yield key, entry

    # Presigned URLs --------------------------------------------------------------------
    def presigned_get(self, key: str) -> str:
        self.path_of(key)
        token = self._objects.sign({"op": "get", "key": key})
        return f"{self.public_url}/signed/object?token={token}"

    def presigned_post(self, key: str) -> tuple[str, dict]:
        self.path_of(key)
        token = self._objects.sign({"op": "post", "key": key})
        # The token rides in the URL, not in `fields`: the route checks it from the headers
        # alone and refuses a bad one before reading (and spooling) any of the body.
        return f"{self.public_url}/signed/upload?token={token}", {}

    def check_token(self, token: str, op: str) -> dict:
        """The claims of a presigned token for `op`; InvalidSignature / ExpiredSignature."""
        claims = self._objects.verify(token, self.url_lifetime_s)
        if claims.get("op") != op or not isinstance(claims.get("key"), str):
            raise InvalidSignature("The signature is not valid for this request")
        return claims

    # Multipart -------------------------------------------------------------------------
    def multipart_start(self, key: str) -> dict:
        self.path_of(key)
        self._collect_stale_uploads()
        upload_id = uuid.uuid4().hex
        folder = self.uploads / upload_id
        folder.mkdir(parents=True)
        (folder / DATA_FILE).touch()
        _write_json(folder / "meta.json", {"key": key, "chunk_size": None, "size": None,
                                           "last_part": None})
        signature = self._upload_configs.sign({"upload_id": upload_id, "key": key})
        return {"upload_id": upload_id, "key": key, "signature": signature}

    def _upload(self, key: str, config: dict) -> tuple[str, Path, dict]:
        """Check the configuration the client sent back; (upload id, folder, meta)."""
        if not isinstance(config, dict):
            raise BadRequest("'multipart_upload_configuration' must be the object returned "
                             "when the upload started")
        try:
            claims = self._upload_configs.verify(config.get("signature"), UPLOAD_MAX_AGE_S)
        except Forbidden as exc:
            raise BadRequest(f"Invalid multipart upload configuration: {exc.message}") from exc
        upload_id = claims.get("upload_id")
        if claims.get("key") != key or config.get("upload_id") != upload_id:
            raise BadRequest("The multipart upload configuration is for another object",
                             {"key": key})
        folder = self.uploads / str(upload_id)
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (FileNotFoundError, ValueError):
            raise NotFound("This multipart upload does not exist (finished, or expired "
                           "after 24 hours)", {"upload_id": upload_id}) from None
        return upload_id, folder, meta

    def multipart_part(self, key: str, config: dict, part_number: int, chunk_size: int,
                       total_size: int | None) -> tuple[str, dict]:
        _check_int(part_number, "part_number", 1, MAX_PARTS)
        _check_int(chunk_size, "chunk_size", 1)
        if total_size is not None:
            _check_int(total_size, "size", 0)
        with self._meta_lock:
            upload_id, folder, meta = self._upload(key, config)
            if meta["chunk_size"] not in (None, chunk_size):
                raise BadRequest("'chunk_size' changed during the upload",
                                 {"chunk_size": chunk_size, "previous": meta["chunk_size"]})
            if meta["chunk_size"] is None or total_size is not None:
                meta["chunk_size"] = chunk_size
                if total_size is not None:
                    # The client sends the total size only with the last part; `end` relies
                    # on it.
                    meta["size"] = total_size
                    meta["last_part"] = part_number
                _write_json(folder / "meta.json", meta)
        token = self._objects.sign({"op": "put", "key": key, "upload_id": upload_id,
                                    "part": part_number, "max_size": chunk_size})
        return f"{self.public_url}/signed/part?token={token}", {}

    def write_part(self, claims: dict, body: UploadBody) -> str:
        """Store one part from a verified PUT token at its offset in the upload's data file;
        return its quoted ETag. The ETag names this write (S3's multipart ETags are opaque
        too): hashing the bytes would cost a pass over them."""
        upload_id, part = str(claims.get("upload_id")), claims.get("part")
        max_size = claims.get("max_size")
        if not isinstance(part, int) or not isinstance(max_size, int) \
                or not upload_id.isalnum():
            raise BadRequest("Invalid part token")
        folder = self.uploads / upload_id
        record = folder / f"{part}.part"
        try:
            fd = os.open(folder / DATA_FILE, os.O_WRONLY)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound("This multipart upload does not exist (finished, or expired "
                           "after 24 hours)", {"upload_id": upload_id}) from None
        try:
            # A part being rewritten is not complete until its new bytes all are.
            _unlink(str(record))
            size = body.write_at(fd, (part - 1) * max_size, max_size)
        finally:
            os.close(fd)
        etag = f'"{uuid.uuid4().hex}"'
        _write_json(record, {"size": size, "etag": etag})
        return etag

    def multipart_end(self, key: str, config: dict, parts: list[dict]) -> None:
        _, folder, meta = self._upload(key, config)
        size, chunk = meta.get("size"), meta.get("chunk_size")
        if size is None or chunk is None:
            raise BadRequest("The upload cannot be finished: no part request carried the "
                             "total 'size' (it comes with the last part)", {"key": key})
        count = math.ceil(size / chunk)
        if meta.get("last_part") is not None and meta["last_part"] != count:
            raise BadRequest(
                f"The last part was numbered {meta['last_part']} but {size} bytes in parts "
                f"of {chunk} make {count} parts", {"size": size, "chunk_size": chunk})
        problems = self._check_parts(folder, size, chunk, count, parts)
        if problems:
            raise BadRequest("The multipart upload is incomplete: " + "; ".join(problems),
                             {"problems": problems, "expected_parts": count})
        path = self.path_of(key)
        data = folder / DATA_FILE
        with open(data, "rb+") as out:
            out.truncate(size)  # drops bytes of parts numbered past the last one
            os.fsync(out.fileno())
        self._place(key, path, data)
        shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _check_parts(folder: Path, size: int, chunk: int, count: int,
                     parts: list[dict]) -> list[str]:
        records = {}
        for path in folder.glob("*.part"):
            number = path.name[:-len(".part")]
            if number.isdigit():
                try:
                    records[int(number)] = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue  # a part being rewritten: missing until complete
        problems = []
        for number in range(1, count + 1):
            expected = chunk if number < count else size - chunk * (count - 1)
            record = records.get(number)
            if record is None:
                problems.append(f"part {number} is missing")
            elif record["size"] != expected:
                problems.append(f"part {number} has {record['size']} bytes, "
                                f"expected {expected}")
        problems += [f"part {n} is beyond the last part {count}"
                     for n in sorted(records) if not 1 <= n <= count]
        # The client lists the ETags it saw; a mismatch means a part was overwritten.
        for item in parts if isinstance(parts, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("number"), int):
                continue
            sent, record = item.get("metadata"), records.get(item["number"])
            if sent and record is not None and record["etag"] != sent:
                problems.append(f"part {item['number']} does not match its ETag {sent}")
        return problems

    def _collect_stale_uploads(self) -> None:
        """Remove multipart uploads nobody touched for 24 h (no abort call exists)."""
        if not self.uploads.is_dir():
            return
        cutoff = time.time() - UPLOAD_MAX_AGE_S
        for folder in self.uploads.iterdir():
            try:
                newest = max([folder.stat().st_mtime]
                             + [p.stat().st_mtime for p in folder.iterdir()])
            except OSError:
                continue
            if newest < cutoff:
                shutil.rmtree(folder, ignore_errors=True)

    # Helpers ---------------------------------------------------------------------------
    def _atomic_write(self, key: str, path: Path, fill) -> int:
        """Write via a temp file in the target folder, then rename over the target."""
        for attempt in range(2):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)
                break
            except FileNotFoundError:
                # A concurrent delete pruned the fresh folder; create it once more.
                if attempt:
                    raise
            except (FileExistsError, NotADirectoryError):
                raise Conflict(f"Cannot write '{key}': a parent folder is an object",
                               {"key": key}) from None
        try:
            with os.fdopen(fd, "wb") as out:
                size = fill(out)
                out.flush()
                os.fsync(out.fileno())
            if path.is_dir():
                raise Conflict(f"Cannot write '{key}': it is a folder of other objects",
                               {"key": key})
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise
        return size

    def _place(self, key: str, path: Path, source: Path) -> None:
        """Rename a complete, synced file over the object (same file system: no copy)."""
        for attempt in range(2):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.is_dir():
                    raise Conflict(f"Cannot write '{key}': it is a folder of other objects",
                                   {"key": key})
                os.replace(source, path)
                return
            except FileNotFoundError:
                if attempt:  # a concurrent delete pruned the fresh folder: once more
                    raise
            except (FileExistsError, NotADirectoryError):
                raise Conflict(f"Cannot write '{key}': a parent folder is an object",
                               {"key": key}) from None
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Uploads on another file system than the store: one copy, then rename.
                with open(source, "rb") as data:
                    self._atomic_write(key, path, lambda out: copy_stream(data, out))
                return

    def _prune_empty_dirs(self, folder: Path) -> None:
        """Drop folders emptied by a delete, so the name can become an object again."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


def _info(key: str, stat: os.stat_result) -> ObjectInfo:
    modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc).replace(tzinfo=None)
    return ObjectInfo(key=key, size=int(stat.st_size), last_modified=modified)


def _check_int(value: object, name: str, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum \
            or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
        raise BadRequest(f"'{name}' must be an integer {bounds}", {name: value})


def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
