"""A cluster's weights store: immutable objects under keys, and one durable pointer.

    <network>/weights/<v>.params   a version's weights (named by content hash)
    <network>/weights/<v>.json     its record
    <network>/weights/<v>.onnx     its ONNX export
    <network>/weights/<v>.int8.onnx  its int8 model, where that is what is served
    <network>/current.json         the served pointer, durable (Redis holds a copy)

Two backends: a directory every replica mounts (NFS, a Kubernetes ReadWriteMany volume) and
S3 (boto3, so AWS, MinIO and Ceph alike; the endpoint from ``AWS_ENDPOINT_URL``). Objects
other than the pointer are written once and never rewritten, so a replica can cache them
forever; both backends make each write atomic (a reader sees all of an object or none).
"""

from __future__ import annotations

import abc
import functools
import os
from pathlib import Path
from typing import Any

from nn_server.core.files import write_atomic
from nn_server.core.locations import file_path, s3_bucket
from nn_server.store.base import StateError


class StoreUnreachable(StateError):
    """The weights store does not answer (the S3 endpoint is down, the mount is gone)."""


class Objects(abc.ABC):
    """Bytes under keys."""

    url: str

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object, or None when there is none."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write the object atomically."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def listed(self, prefix: str) -> dict[str, int]:
        """Every key under ``prefix``, with when it was written (ns since the epoch)."""

    @abc.abstractmethod
    def delete(self, key: str) -> None: ...

    def local(self, key: str) -> Path | None:
        """The object as a local file, where the backend keeps it as one (else None: the
        caller downloads it)."""
        return None

    def download(self, key: str, target: Path) -> bool:
        """Copy the object to ``target`` atomically; whether there was one."""
        data = self.get(key)
        if data is None:
            return False
        write_atomic(target, data)
        return True

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ``StateError`` with one line unless the store can be read and written."""


class DirectoryObjects(Objects):
    """Objects as files under one directory (shared by every replica)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = file_path("NN_WEIGHTS_URL", url)

    def path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnreachable(f"{self.url}: {exc}") from None

    def put(self, key: str, data: bytes) -> None:
        write_atomic(self.path(key), data)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def listed(self, prefix: str) -> dict[str, int]:
        folder = self.path(prefix)
        if not folder.is_dir():
            return {}
        listed = {}
        for path in folder.iterdir():
            if path.name.startswith("."):  # a write in progress
                continue
            try:
                listed[f"{prefix}{path.name}"] = path.stat().st_mtime_ns
            except FileNotFoundError:  # removed since the listing
                continue
        return listed

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def local(self, key: str) -> Path | None:
        return self.path(key)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}"
            write_atomic(probe, b"")
            probe.unlink()
        except OSError as exc:
            raise StateError(f"NN_WEIGHTS_URL={self.url} is not a writable directory: "
                             f"{exc.strerror or exc}") from None


class S3Objects(Objects):
    """Objects in an S3 bucket, under a prefix. boto3 reads the endpoint, region and
    credentials the standard way (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bucket, prefix = s3_bucket(url)
        self.prefix = f"{prefix}/" if prefix else ""

    @functools.cached_property
    def client(self) -> Any:
        import boto3
        from botocore.config import Config as BotoConfig

        # Short timeouts and few retries: a request that waits on S3 waits for them.
        return boto3.client("s3", config=BotoConfig(
            connect_timeout=2, read_timeout=10, retries={"max_attempts": 2}))

    def failed(self, exc: Exception) -> StateError:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            return StateError(f"{self.url}: {error.get('Code', 'error')}: "
                              f"{error.get('Message', exc)}")
        if isinstance(exc, BotoCoreError):
            return StoreUnreachable(f"{self.url}: {exc}")
        raise exc

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            return bytes(answer["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self.failed(exc) from None
        except BotoCoreError as exc:
            raise self.failed(exc) from None

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:  # one PUT: S3 makes it visible whole or not at all
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self.failed(exc) from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return False
            raise self.failed(exc) from None
        except BotoCoreError as exc:
            raise self.failed(exc) from None

    def listed(self, prefix: str) -> dict[str, int]:
        from botocore.exceptions import BotoCoreError, ClientError

        listed = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix):]
                    listed[key] = int(item["LastModified"].timestamp() * 1e9)
        except (BotoCoreError, ClientError) as exc:
            raise self.failed(exc) from None
        return listed

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except (BotoCoreError, ClientError) as exc:
            raise self.failed(exc) from None

    def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise StateError(f"NN_WEIGHTS_URL={self.url}: no S3 credentials (set "
                             "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile)"
                             ) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            why = {"404": f"there is no bucket {self.bucket!r}", "NoSuchBucket":
                   f"there is no bucket {self.bucket!r}", "403": "access denied"}.get(
                       code, f"{code} {exc.response.get('Error', {}).get('Message', '')}")
            raise StateError(f"NN_WEIGHTS_URL={self.url}: {why.strip()}") from None
        except BotoCoreError as exc:
            endpoint = os.environ.get("AWS_ENDPOINT_URL", "AWS")
            raise StateError(f"NN_WEIGHTS_URL={self.url}: cannot reach {endpoint}: {exc}"
                             ) from None


def open_objects(url: str) -> Objects:
    """The weights store ``url`` names (already checked by ``parse_locations``)."""
    return S3Objects(url) if url.startswith("s3://") else DirectoryObjects(url)
