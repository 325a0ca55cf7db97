"""A DataStore on S3 / MinIO through the `minio` client.

Clients talk to the object store directly with native presigned URLs (contract §6.7):

* single-part upload: a presigned POST policy (`fields` + file part `file`), bound to one key;
* multipart upload: CreateMultipartUpload at `start`, one presigned `PUT ?partNumber&uploadId`
  per part, and `end` checks every part with ListParts before CompleteMultipartUpload;
* download: a presigned GET.

The API itself streams (`open_read`, `write`) without holding objects in memory.

Bookkeeping of a multipart upload (chunk size, total size, last part number, which arrive
with the part requests) is kept in a small object under `.shipyard-uploads/`, outside every
environment's namespace (namespaces start with a project name, never with a dot), so the
checks of `end` are the same as the local store's. Stale uploads are aborted by a bucket
lifecycle rule (AbortIncompleteMultipartUpload after one day) when the server allows it.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import logging
import math
import threading
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.datatypes import Part, PostPolicy
from minio.error import S3Error
from minio.lifecycleconfig import AbortIncompleteMultipartUpload, LifecycleConfig, Rule

from ..config import Settings
from ..errors import BadRequest, NotFound
from .base import DataStore, ObjectInfo

log = logging.getLogger("shipyard.datastore.s3")

PART_SIZE = 16 * 1024 * 1024  # put_object's part size when the length is unknown
MAX_PARTS = 10_000
UPLOADS_PREFIX = ".shipyard-uploads/"
_MISSING = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


class _CountingReader(io.RawIOBase):
    """Counts the bytes minio reads from the caller's stream (put_object returns no size)."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


class _Body(io.RawIOBase):
    """An object body: reads stream from the HTTP response; close() frees the connection."""

    def __init__(self, response):
        self._response = response

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._response.read(None if size is None or size < 0 else size)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


class S3DataStore(DataStore):
    def __init__(self, client: Minio, bucket: str, url_lifetime_s: int,
                 presign_client: Minio | None = None, region: str = "us-east-1"):
        if len(bucket) < 3:
            raise ValueError("S3 bucket names need at least 3 characters")
        self.client = client
        # Presigned URLs embed the host they were signed for: a second client may sign for
        # the address clients use when it differs from the API's own (in-cluster) address.
        self.presign_client = presign_client or client
        self.bucket = bucket
        self.region = region
        self.expiry = dt.timedelta(seconds=url_lifetime_s)
        # Part requests of one upload arrive in parallel and update its bookkeeping object;
        # the lock serialises those updates within this API process.
        self._meta_lock = threading.Lock()
        self._ensure_bucket()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3DataStore:
        if not settings.s3_endpoint:
            raise ValueError("SHIPYARD_DATASTORE=s3 needs SHIPYARD_S3_ENDPOINT (host:port)")

        def client(endpoint: str, secure: bool) -> Minio:
            return Minio(endpoint, access_key=settings.s3_access_key,
                         secret_key=settings.s3_secret_key, secure=secure,
                         region=settings.s3_region)

        presign = None
        public = settings.s3_public_endpoint
        if public:
            parts = urlsplit(public if "//" in public else "//" + public)
            presign = client(parts.netloc, parts.scheme == "https" if parts.scheme
                             else settings.s3_secure)
        return cls(client(settings.s3_endpoint, settings.s3_secure), settings.s3_bucket,
                   settings.signed_url_lifetime_s, presign, settings.s3_region)

    def _ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:  # another API process made it first
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        try:
            rule = Rule(ENABLED, rule_filter=Filter(prefix=""), rule_id="shipyard-abort-stale",
                        abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(1))
            self.client.set_bucket_lifecycle(self.bucket, LifecycleConfig([rule]))
        except (S3Error, ValueError) as exc:  # some S3 servers refuse lifecycle rules
            log.warning("could not set the bucket lifecycle rule: %s", exc)

    @staticmethod
    def _check_key(key: str) -> None:
        if not isinstance(key, str) or not key or key.startswith(("/", UPLOADS_PREFIX)):
            raise BadRequest("Invalid object key", {"key": key})

    def _not_found(self, key: str, exc: S3Error) -> Exception:
        if exc.code in _MISSING:
            return NotFound(f"Object '{key}' not found", {"key": key})
        return exc

    # Objects ---------------------------------------------------------------------------
    def info(self, key: str) -> ObjectInfo:
        self._check_key(key)
        try:
            stat = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            raise self._not_found(key, exc) from None
        return ObjectInfo(key=key, size=int(stat.size or 0),
                          last_modified=_naive_utc(stat.last_modified))

    def list(self, prefix: str, start_after: str | None, limit: int) -> list[ObjectInfo]:
        if limit <= 0:
            return []
        objects = self.client.list_objects(self.bucket, prefix=prefix, recursive=True,
                                           start_after=start_after or None)
        result = []
        for obj in itertools.islice((o for o in objects if not o.is_dir), limit):
            result.append(ObjectInfo(key=obj.object_name, size=int(obj.size or 0),
                                     last_modified=_naive_utc(obj.last_modified)))
        return result

    def open_read(self, key: str) -> BinaryIO:
        self._check_key(key)
        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            raise self._not_found(key, exc) from None
        return io.BufferedReader(_Body(response), 1024 * 1024)

    def write(self, key: str, stream: BinaryIO) -> int:
        self._check_key(key)
        counter = _CountingReader(stream)
        # length=-1: minio streams in parts of PART_SIZE, never the whole object in memory.
        self.client.put_object(self.bucket, key, counter, length=-1, part_size=PART_SIZE)
        return counter.count

    def delete(self, key: str) -> None:
        self.info(key)  # S3 deletes silently: the contract wants a 404 for a missing object
        self.client.remove_object(self.bucket, key)

    # Presigned URLs --------------------------------------------------------------------
    def presigned_get(self, key: str) -> str:
        self._check_key(key)
        return self.presign_client.presigned_get_object(self.bucket, key, expires=self.expiry)

    def presigned_post(self, key: str) -> tuple[str, dict]:
        self._check_key(key)
        policy = PostPolicy(self.bucket, _utcnow() + self.expiry)
        policy.add_equals_condition("key", key)
        fields = {"key": key, **self.presign_client.presigned_post_policy(policy)}
        url = self.presign_client._base_url.build(method="POST", region=self.region,
                                                  bucket_name=self.bucket)
        return urlunsplit(url), fields

    # Multipart -------------------------------------------------------------------------
    def multipart_start(self, key: str) -> dict:
        self._check_key(key)
        upload_id = self.client._create_multipart_upload(self.bucket, key, {})
        return {"upload_id": upload_id, "key": key}

    def _upload_id(self, key: str, config: object) -> str:
        if not isinstance(config, dict) or not isinstance(config.get("upload_id"), str) \
                or not config["upload_id"]:
            raise BadRequest("'multipart_upload_configuration' must be the object returned "
                             "when the upload started")
        if config.get("key") != key:
            raise BadRequest("The multipart upload configuration is for another object",
                             {"key": key})
        return config["upload_id"]

    def _meta_key(self, upload_id: str) -> str:
        return UPLOADS_PREFIX + upload_id.replace("/", "_") + ".json"

    def _read_meta(self, upload_id: str) -> dict:
        try:
            response = self.client.get_object(self.bucket, self._meta_key(upload_id))
        except S3Error as exc:
            if exc.code in _MISSING:
                return {}
            raise
        try:
            return json.loads(response.read())
        finally:
            response.close()
            response.release_conn()

    def _write_meta(self, upload_id: str, meta: dict) -> None:
        data = json.dumps(meta).encode()
        self.client.put_object(self.bucket, self._meta_key(upload_id), io.BytesIO(data),
                               len(data))

    def _check_upload(self, key: str, upload_id: str) -> None:
        try:
            self.client._list_parts(self.bucket, key, upload_id, max_parts=1)
        except S3Error as exc:
            if exc.code in ("NoSuchUpload", "NoSuchKey"):
                raise NotFound("This multipart upload does not exist (finished, or expired)",
                               {"upload_id": upload_id}) from None
            raise

    def _parts(self, key: str, upload_id: str) -> list[Part]:
        """Every uploaded part (ListParts pages of 1000); NotFound for an unknown upload."""
        parts: list[Part] = []
        marker = None
        for _ in range(MAX_PARTS // 1000 + 1):
            try:
                page = self.client._list_parts(self.bucket, key, upload_id,
                                               part_number_marker=marker)
            except S3Error as exc:
                if exc.code in ("NoSuchUpload", "NoSuchKey"):
                    raise NotFound("This multipart upload does not exist (finished, or "
                                   "expired)", {"upload_id": upload_id}) from None
                raise
            parts.extend(page.parts)
            if not page.is_truncated:
                break
            marker = str(page.next_part_number_marker)
        return parts

    def multipart_part(self, key: str, config: dict, part_number: int, chunk_size: int,
                       total_size: int | None) -> tuple[str, dict]:
        upload_id = self._upload_id(key, config)
        _check_int(part_number, "part_number", 1, MAX_PARTS)
        _check_int(chunk_size, "chunk_size", 1)
        if total_size is not None:
            _check_int(total_size, "size", 0)
        with self._meta_lock:
            meta = self._read_meta(upload_id)
            if meta.get("chunk_size") not in (None, chunk_size):
                raise BadRequest("'chunk_size' changed during the upload",
                                 {"chunk_size": chunk_size, "previous": meta["chunk_size"]})
            if meta.get("chunk_size") is None or total_size is not None:
                self._check_upload(key, upload_id)  # no bookkeeping for unknown uploads
                meta.update(chunk_size=chunk_size, key=key)
                if total_size is not None:
                    # The client sends the total size only with the last part; `end` relies
                    # on it.
                    meta.update(size=total_size, last_part=part_number)
                self._write_meta(upload_id, meta)
        url = self.presign_client.get_presigned_url(
            "PUT", self.bucket, key, expires=self.expiry,
            extra_query_params={"partNumber": str(part_number), "uploadId": upload_id})
        return url, {}

    def multipart_end(self, key: str, config: dict, parts: list[dict]) -> None:
        upload_id = self._upload_id(key, config)
        meta = self._read_meta(upload_id)
        uploaded = {p.part_number: p for p in self._parts(key, upload_id)}
        size, chunk = meta.get("size"), meta.get("chunk_size")
        if size is None or chunk is None:
            raise BadRequest("The upload cannot be finished: no part request carried the "
                             "total 'size' (it comes with the last part)", {"key": key})
        count = max(1, math.ceil(size / chunk))
        if meta.get("last_part") not in (None, count):
            raise BadRequest(
                f"The last part was numbered {meta['last_part']} but {size} bytes in parts "
                f"of {chunk} make {count} parts", {"size": size, "chunk_size": chunk})
        problems = []
        for number in range(1, count + 1):
            expected = chunk if number < count else size - chunk * (count - 1)
            part = uploaded.get(number)
            if part is None:
                problems.append(f"part {number} is missing")
            elif part.size is not None and part.size != expected:
                problems.append(f"part {number} has {part.size} bytes, expected {expected}")
        problems += [f"part {n} is beyond the last part {count}"
                     for n in sorted(uploaded) if n > count]
        # The client lists the ETags it saw; a mismatch means a part was overwritten.
        for item in parts if isinstance(parts, list) else []:
            if isinstance(item, dict) and isinstance(item.get("number"), int) \
                    and item.get("metadata") and item["number"] in uploaded \
                    and str(item["metadata"]).strip('"') != uploaded[item["number"]].etag:
                problems.append(f"part {item['number']} does not match its ETag "
                                f"{item['metadata']}")
        if problems:
            raise BadRequest("The multipart upload is incomplete: " + "; ".join(problems),
                             {"problems": problems, "expected_parts": count})
        self.client._complete_multipart_upload(
            self.bucket, key, upload_id, [uploaded[n] for n in range(1, count + 1)])
        try:
            self.client.remove_object(self.bucket, self._meta_key(upload_id))
        except S3Error:
            log.warning("could not remove the bookkeeping of upload %s", upload_id)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _naive_utc(value: dt.datetime | None) -> dt.datetime:
    if value is None:
        return _utcnow().replace(tzinfo=None)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _check_int(value: object, name: str, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum \
            or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
        raise BadRequest(f"'{name}' must be an integer {bounds}", {name: value})
