"""Outputs too large for a NATS message go to a JetStream Object Store bucket.

The threshold is derived from the server's ``max_payload`` (a quarter of it, so a
reply can still carry several outputs). Above it, the output is streamed into the
bucket ``PYATS_OUTPUTS`` in chunks encoded on the fly (no second full copy), and the
command carries an ``output_ref`` (bucket, name, size, sha256) instead of ``output``.

One device result is offloaded once: the results publisher runs first and the reply
sink reuses its offloaded result (cached by request id and device until the sink has
sent it). Without JetStream nothing can be offloaded: such a command is reported as
failed with ``output_too_large``; nothing is truncated silently.

Clients fetch referenced outputs with ``service.client.outputs``: a requester asks the
service on ``<prefix>.outputs.<requester>`` (the service checks that the output belongs to
one of that requester's results and streams it back in chunks, then an empty end
marker), so requesters need no JetStream permissions.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
from collections import OrderedDict

import msgspec
import nats.errors
import nats.js.errors
from loguru import logger
from nats.aio.client import Client
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.object_store import ObjectStore

from service.contract.errors import ErrorCode, RequestError
from service.contract.messages import CommandResult, DeviceResult, OutputRef
from service.transport.subjects import Subjects, device_token, sanitize_token

BUCKET = "PYATS_OUTPUTS"
_ENCODE_CHARS = 64 * 1024
_CACHE_LIMIT = 256
_NAME_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # no '*' or '>': a name must not become a wildcard
_OWNER_CHECKS = 10  # 2 s


def threshold_for(max_payload: int) -> int:
    """Outputs longer than this many characters leave the message."""
    return max(1024, max_payload // 4)


class _Utf8Reader(io.RawIOBase):
    """Reads a ``str`` as UTF-8 bytes, encoding a slice at a time."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._pending = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._offset >= len(self._pending):
            if self._pos >= len(self._text):
                return 0
            self._pending = self._text[self._pos : self._pos + _ENCODE_CHARS].encode()
            self._pos += _ENCODE_CHARS
            self._offset = 0
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        return n


def _too_large(command: CommandResult, threshold: int) -> CommandResult:
    return msgspec.structs.replace(
        command,
        success=False,
        output=None,
        error=(
            f"the output ({len(command.output or '')} characters) is larger than {threshold} and cannot be "
            "offloaded without JetStream; narrow it with a pipe option"
        ),
        error_code=ErrorCode.OUTPUT_TOO_LARGE.value,
    )


class LargeOutputs:
    """Offloads large outputs of device results (one upload per result) and reads them back
    for the requester they belong to."""

    def __init__(self, store: ObjectStore | None, threshold: int) -> None:
        self._store = store
        self.threshold = threshold
        self._done: OrderedDict[tuple[str, str, str], asyncio.Future[DeviceResult]] = OrderedDict()

    @classmethod
    async def start(cls, client: Client, jetstream: bool, ttl: float, storage: str) -> LargeOutputs:
        """Threshold from ``client.max_payload``; the bucket is created if missing."""
        threshold = threshold_for(client.max_payload)
        store = None
        if jetstream:
            store = await _ensure_bucket(client.jetstream(), ttl, storage)
        logger.info(
            "outputs above {} characters go to object store {}",
            threshold,
            BUCKET if store is not None else "(none: without JetStream they fail with output_too_large)",
        )
        return cls(store, threshold)

    async def read_for(
        self, client: Client, results_stream: str, subjects: Subjects, requester: str, ref: OutputRef
    ) -> bytes:
        """The bytes of ``ref`` if it is named in a result of ``requester`` kept in the results
        stream (same requester, request, device and output); ``output_not_found`` otherwise
        (whether it exists for someone else is not told)."""
        missing = RequestError(ErrorCode.OUTPUT_NOT_FOUND, f"no output {ref.name!r} among your results")
        parts = ref.name.split("/")
        if self._store is None or ref.bucket != BUCKET or len(parts) != 4 or not all(map(_NAME_TOKEN.match, parts)):
            raise missing
        owner, request_id, token, _ = parts
        if owner != sanitize_token(requester):
            raise missing
        subject = subjects.results_filter(requester, request_id, token)
        # a streamed reply may reach the requester just before its result is stored: wait a little
        for attempt in range(_OWNER_CHECKS):
            try:
                stored = await client.jetstream().get_last_msg(results_stream, subject)
                break
            except nats.js.errors.NotFoundError:
                if attempt == _OWNER_CHECKS - 1:
                    raise missing from None
                await asyncio.sleep(0.2)
        try:
            owning = msgspec.json.decode(stored.data or b"", type=DeviceResult)
        except msgspec.DecodeError:
            raise missing from None
        if not any(c.output_ref is not None and c.output_ref.name == ref.name for c in owning.commands):
            raise missing
        sink = io.BytesIO()
        try:
            await self._store.get(ref.name, writeinto=sink)
        except nats.js.errors.NotFoundError:
            raise missing from None
        return sink.getvalue()

    def _needs(self, result: DeviceResult) -> bool:
        return any(c.output is not None and len(c.output) > self.threshold for c in result.commands)

    async def offload(self, requester: str, result: DeviceResult) -> DeviceResult:
        """``result`` with large outputs replaced by references; cached until :meth:`sent`."""
        if not self._needs(result):
            return result
        key = (sanitize_token(requester), result.request_id, device_token(result.hostname, result.port))
        known = self._done.get(key)
        if known is not None:
            return await asyncio.shield(known)
        future: asyncio.Future[DeviceResult] = asyncio.get_running_loop().create_future()
        self._done[key] = future
        while len(self._done) > _CACHE_LIMIT:  # a result whose reply never came; keep the cache bounded
            self._done.popitem(last=False)
        try:
            offloaded = await self._offload(result, "/".join(key))
        except BaseException as exc:
            self._done.pop(key, None)
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        future.set_result(offloaded)
        return offloaded

    async def sent(self, requester: str, result: DeviceResult) -> DeviceResult:
        """For the reply sink, which sends last: the offloaded result, then forget it."""
        offloaded = await self.offload(requester, result)
        self._done.pop((sanitize_token(requester), result.request_id, device_token(result.hostname, result.port)), None)
        return offloaded

    async def _offload(self, result: DeviceResult, owner: str) -> DeviceResult:
        """``owner`` is ``<requester>/<request id>/<device>``: object names are scoped to the
        requester, so reusing another requester's request id reaches nothing of theirs."""
        commands: list[CommandResult] = []
        changed = False
        for index, command in enumerate(result.commands):
            if command.output is None or len(command.output) <= self.threshold:
                commands.append(command)
                continue
            changed = True
            if self._store is None:
                commands.append(_too_large(command, self.threshold))
                continue
            name = f"{owner}/{index}"
            info = await self._store.put(name, _Utf8Reader(command.output))  # type: ignore[arg-type]
            digest = base64.urlsafe_b64decode((info.digest or "").partition("=")[2]).hex()
            ref = OutputRef(bucket=BUCKET, name=name, size=info.size or 0, sha256=digest)
            logger.debug("output of {!r} ({} bytes) offloaded to {}/{}", command.command, ref.size, BUCKET, name)
            commands.append(msgspec.structs.replace(command, output=None, output_ref=ref))
        if not changed:
            return result
        failed = [c for c in commands if not c.success]
        if not failed or not result.success:
            return msgspec.structs.replace(result, commands=commands)
        return msgspec.structs.replace(
            result,
            commands=commands,
            success=False,
            error=f"{len(failed)} of {len(commands)} commands failed",
            error_code=failed[0].error_code,
        )


async def _ensure_bucket(js: JetStreamContext, ttl: float, storage: str) -> ObjectStore | None:
    try:
        return await js.object_store(BUCKET)
    except nats.js.errors.BucketNotFoundError:
        pass
    try:
        store = await js.create_object_store(
            BUCKET,
            config=api.ObjectStoreConfig(
                description="pyats-ro outputs too large for a message",
                ttl=ttl or None,
                storage=api.StorageType(storage),
            ),
        )
    except (nats.errors.Error, TimeoutError) as exc:
        logger.warning("object store {} unavailable ({}): large outputs will fail", BUCKET, type(exc).__name__)
        return None
    logger.info("created object store {}", BUCKET)
    return store
