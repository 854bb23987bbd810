# Handlers are named after SQS's operation names:
# ruff: noqa: N802
"""A local Amazon SQS: the queue Amazon's Notifications API delivers to (notifications_api.py puts the
market's notifications on it), spoken as recent boto3/botocore speak SQS, the AWS JSON 1.0 protocol:

- ``POST`` (botocore posts to the endpoint's ``/``; any path is taken) with
  ``X-Amz-Target: AmazonSQS.<Operation>`` and ``Content-Type: application/x-amz-json-1.0``, a JSON body
  naming the queue by ``QueueUrl``; answers JSON (``application/x-amz-json-1.0``);
- errors: HTTP 400 ``{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": ...}`` plus the
  ``x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender`` header from which botocore takes
  the (query-compatible) error code, as SQS sends it;
- authentication: a SigV4 ``Authorization: AWS4-HMAC-SHA256 Credential=…`` header must be present, but
  **any signature is accepted** (the simulator knows no AWS secret keys). No header → 403
  ``MissingAuthenticationTokenException``.

Operations: CreateQueue, GetQueueUrl, GetQueueAttributes, SendMessage, ReceiveMessage
(``MaxNumberOfMessages`` 1-10, ``VisibilityTimeout`` 0-43200, ``WaitTimeSeconds`` 0-20 long poll that
returns as soon as a message is there, ``ApproximateReceiveCount`` / ``SentTimestamp`` /
``ApproximateFirstReceiveTimestamp`` attributes), DeleteMessage, DeleteMessageBatch (1-10 entries, per-entry
``Successful`` / ``Failed``), ChangeMessageVisibility, PurgeQueue. Semantics modelled: a received message is
invisible for its visibility timeout, then delivered again with a new receipt handle and a higher receive
count (at-least-once); only the latest receipt handle deletes it (an older one is accepted and does nothing,
as SQS may); a queue with a ``RedrivePolicy`` moves a message to its dead-letter queue when it would be
received more than ``maxReceiveCount`` times; messages older than ``MessageRetentionPeriod`` go away. Not
modelled: FIFO queues, message attributes, KMS, batch sends, ordering promises beyond "oldest first".

Time: visibility and long polls run on ``time.monotonic()`` plus an offset that ``advance(seconds)`` moves
(tests let a visibility timeout pass without waiting). One queue exists from the start:
``DEFAULT_QUEUE_NAME`` (with the dead-letter queue ``<name>-dlq`` after 5 receives), account
``ACCOUNT_ID``, region ``REGION``; its URL is ``<simulator base>/<account>/<name>``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from .app import LoggedRequest
    from .market import Market

JSON = dict[str, Any]
ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
DEFAULT_QUEUE_NAME = "sellerpilot-notifications"
DEFAULT_MAX_RECEIVE_COUNT = 5
CONTENT_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "AmazonSQS."
MAX_BATCH = 10
MAX_WAIT_SECONDS = 20
MAX_VISIBILITY_SECONDS = 12 * 3600
MAX_BODY_BYTES = 256 * 1024
#: Queue attribute defaults, as SQS sets them (strings on the wire).
DEFAULT_ATTRIBUTES = {
    "VisibilityTimeout": "30",
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "DelaySeconds": "0",
    "MaximumMessageSize": "262144",
}
#: error code -> (HTTP status, query-compatible code) for the x-amzn-query-error header.
ERRORS = {
    "QueueDoesNotExist": (400, "AWS.SimpleQueueService.NonExistentQueue"),
    "ReceiptHandleIsInvalid": (400, "ReceiptHandleIsInvalid"),
    "InvalidParameterValue": (400, "InvalidParameterValue"),
    "MissingParameter": (400, "MissingParameter"),
    "InvalidAttributeName": (400, "InvalidAttributeName"),
    "TooManyEntriesInBatchRequest": (400, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
    "EmptyBatchRequest": (400, "AWS.SimpleQueueService.EmptyBatchRequest"),
    "BatchEntryIdsNotDistinct": (400, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
    "InvalidAction": (400, "InvalidAction"),
    "SerializationException": (400, "SerializationException"),
    "InvalidMessageContents": (400, "InvalidMessageContents"),
    "MessageNotInflight": (400, "AWS.SimpleQueueService.MessageNotInflight"),
    "MissingAuthenticationTokenException": (403, "MissingAuthenticationToken"),
    "InternalError": (500, "InternalError"),
}


class SqsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def response(self, request_id: str) -> Response:
        status, query_code = ERRORS.get(self.code, (400, self.code))
        body = {"__type": f"com.amazonaws.sqs#{self.code}", "message": self.message}
        response = Response(json.dumps(body), status=status, content_type=CONTENT_TYPE)
        response.headers["x-amzn-query-error"] = f"{query_code};{'Sender' if status < 500 else 'Receiver'}"
        response.headers["x-amzn-RequestId"] = request_id
        return response


@dataclass
class SqsMessage:
    message_id: str
    body: str
    sent_ms: int  # wall clock, as SQS reports SentTimestamp
    sent_at: float  # queue clock
    receive_count: int = 0
    first_receive_ms: int | None = None
    visible_at: float = 0.0
    receipt_handle: str | None = None  # the latest one; only it deletes the message

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body.encode(), usedforsecurity=False).hexdigest()


@dataclass
class SqsQueue:
    name: str
    account_id: str = ACCOUNT_ID
    region: str = REGION
    attributes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))
    messages: deque[SqsMessage] = field(default_factory=deque)
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{self.name}"

    def redrive(self) -> tuple[str, int] | None:
        raw = self.attributes.get("RedrivePolicy")
        if not raw:
            return None
        policy = json.loads(raw)
        return str(policy["deadLetterTargetArn"]), int(policy["maxReceiveCount"])


@dataclass
class SqsStats:
    sent: int = 0
    received: int = 0  # message deliveries (a redelivery counts again)
    deleted: int = 0
    moved_to_dead_letter: int = 0
    expired: int = 0
    calls: dict[str, int] = field(default_factory=dict)


_REGISTRY: weakref.WeakKeyDictionary[Market, SqsService] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def sqs_for(market: Market) -> SqsService:
    """The market's SQS (created, with the default queue and its dead-letter queue, on first use)."""
    with _REGISTRY_LOCK:
        service = _REGISTRY.get(market)
        if service is None:
            service = _REGISTRY[market] = SqsService()
        return service


def queue_url(base: str, queue: SqsQueue) -> str:
    return f"{base.rstrip('/')}/{queue.account_id}/{queue.name}"


class SqsService:
    """The queues. All state under one condition variable (long polls wait on it); never held while
    calling out, so it nests safely inside the market's lock (the market sends while holding that)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._offset = 0.0
        self.cond = threading.Condition()
        self.queues: dict[str, SqsQueue] = {}
        self.stats = SqsStats()
        self._handles = itertools.count(1)
        dead = self.create_queue(f"{DEFAULT_QUEUE_NAME}-dlq", {"MessageRetentionPeriod": "1209600"})
        self.create_queue(
            DEFAULT_QUEUE_NAME,
            {
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dead.arn, "maxReceiveCount": DEFAULT_MAX_RECEIVE_COUNT}
                )
            },
        )

    # ---------------------------------------------------------------- clock

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the queue clock (visibility timeouts, retention, long polls) ahead by ``seconds``."""
        with self.cond:
            self._offset += seconds
            self.cond.notify_all()

    # ---------------------------------------------------------------- queues

    def create_queue(self, name: str, attributes: dict[str, str] | None = None) -> SqsQueue:
        with self.cond:
            queue = self.queues.get(name)
            if queue is None:
                queue = self.queues[name] = SqsQueue(name)
            queue.attributes.update(attributes or {})
            return queue

    def queue_named(self, name: str) -> SqsQueue:
        with self.cond:
            queue = self.queues.get(name)
        if queue is None:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        return queue

    def queue_by_url(self, url: Any) -> SqsQueue:
        """The queue a ``QueueUrl`` names: ``…/<account>/<name>`` (the host is not compared, so the same
        queue answers under every address the simulator is reached by)."""
        if not isinstance(url, str) or not url:
            raise SqsError("MissingParameter", "The request must contain the parameter QueueUrl.")
        parts = url.rstrip("/").split("/")
        if len(parts) < 2:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        queue = self.queues.get(parts[-1])
        if queue is None or queue.account_id != parts[-2]:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        return queue

    def queue_by_arn(self, arn: str) -> SqsQueue | None:
        with self.cond:  # re-entrant (an RLock underneath)
            return next((q for q in self.queues.values() if q.arn == arn), None)

    # ---------------------------------------------------------------- messages

    def send(self, queue: SqsQueue, body: str) -> SqsMessage:
        """Put ``body`` on ``queue`` (what Amazon does for a notification)."""
        if not body:
            raise SqsError("MissingParameter", "The request must contain the parameter MessageBody.")
        if len(body.encode()) > MAX_BODY_BYTES:
            raise SqsError("InvalidParameterValue", "One or more parameters are invalid. Reason: too long.")
        with self.cond:
            message = SqsMessage(
                message_id=str(uuid.uuid4()),
                body=body,
                sent_ms=int(time.time() * 1000),
                sent_at=self.now(),
                visible_at=self.now() + int(queue.attributes.get("DelaySeconds", "0")),
            )
            queue.messages.append(message)
            self.stats.sent += 1
            self.cond.notify_all()
            return message

    def _expire(self, queue: SqsQueue, now: float) -> None:
        keep = float(queue.attributes.get("MessageRetentionPeriod", "345600"))
        while queue.messages and now - queue.messages[0].sent_at > keep:
            queue.messages.popleft()
            self.stats.expired += 1

    def _take(self, queue: SqsQueue, limit: int, visibility: int) -> list[SqsMessage]:
        now = self.now()
        self._expire(queue, now)
        redrive = queue.redrive()
        dead = self.queue_by_arn(redrive[0]) if redrive else None
        taken: list[SqsMessage] = []
        for message in list(queue.messages):
            if len(taken) >= limit:
                break
            if message.visible_at > now:
                continue
            if redrive and dead is not None and message.receive_count >= redrive[1]:
                # Received maxReceiveCount times and never deleted: SQS moves it aside.
                queue.messages.remove(message)
                message.visible_at, message.receipt_handle = now, None
                dead.messages.append(message)
                self.stats.moved_to_dead_letter += 1
                continue
            message.receive_count += 1
            if message.first_receive_ms is None:
                message.first_receive_ms = int(time.time() * 1000)
            message.visible_at = now + visibility
            message.receipt_handle = f"AQEB{next(self._handles):08d}{uuid.uuid4().hex}"
            taken.append(message)
        self.stats.received += len(taken)
        return taken

    def receive(self, queue: SqsQueue, *, limit: int, visibility: int, wait: float) -> list[SqsMessage]:
        """Up to ``limit`` visible messages, each then invisible for ``visibility`` seconds; waits up to
        ``wait`` seconds (real time) for the first one."""
        deadline = time.monotonic() + wait
        with self.cond:
            while True:
                taken = self._take(queue, limit, visibility)
                remaining = deadline - time.monotonic()
                if taken or remaining <= 0:
                    return taken
                # Wake for new messages, a clock advance, or (in slices) a visibility timeout passing.
                self.cond.wait(min(remaining, 0.2))

    def delete(self, queue: SqsQueue, receipt_handle: Any) -> None:
        if not isinstance(receipt_handle, str) or not receipt_handle.startswith("AQEB"):
            raise SqsError(
                "ReceiptHandleIsInvalid", f'The input receipt handle "{receipt_handle}" is invalid.'
            )
        with self.cond:
            for message in queue.messages:
                if message.receipt_handle == receipt_handle:
                    queue.messages.remove(message)
                    self.stats.deleted += 1
                    return
        # A handle of an earlier receive, or of a message already deleted: accepted, nothing happens.

    def change_visibility(self, queue: SqsQueue, receipt_handle: Any, seconds: int) -> None:
        with self.cond:
            for message in queue.messages:
                if message.receipt_handle == receipt_handle:
                    message.visible_at = self.now() + seconds
                    self.cond.notify_all()
                    return
        raise SqsError("MessageNotInflight", "The message referred to isn't in flight.")

    def purge(self, queue: SqsQueue) -> None:
        with self.cond:
            queue.messages.clear()

    def visible_bodies(self, name: str) -> list[str]:
        """Bodies on queue ``name``, in flight or not (for tests and the state page)."""
        with self.cond:
            return [m.body for m in self.queue_named(name).messages]


def _int_param(body: JSON, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SqsError(
            "InvalidParameterValue",
            f"Value {value} for parameter {name} is invalid. Reason: Must be between {low} and {high}.",
        )
    return value


class SqsEndpoint:
    """The werkzeug face of ``SqsService``; ``SimulatorApp`` hands it every request it ``handles``."""

    def __init__(self, market: Market, public_base: Callable[[Request], str]) -> None:
        self.market = market
        self.service = sqs_for(market)
        self._public_base = public_base

    @staticmethod
    def handles(request: Request) -> bool:
        return request.method == "POST" and request.headers.get("X-Amz-Target", "").startswith(TARGET_PREFIX)

    def dispatch(self, request: Request, host_log: deque[LoggedRequest] | None = None) -> Response:
        from .app import LoggedRequest

        request_id = str(uuid.uuid4())
        operation = request.headers.get("X-Amz-Target", "")[len(TARGET_PREFIX) :]
        body: Any = None
        try:
            if not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
                raise SqsError(
                    "MissingAuthenticationTokenException", "Request is missing Authentication Token"
                )
            try:
                body = json.loads(request.get_data() or b"{}")
            except ValueError:
                raise SqsError(
                    "SerializationException", "Start of structure or map found where not expected."
                ) from None
            if not isinstance(body, dict):
                raise SqsError(
                    "SerializationException", "Start of structure or map found where not expected."
                )
            handler = getattr(self, operation, None) if operation.isalpha() else None
            if handler is None:
                raise SqsError("InvalidAction", f"The action {operation} is not valid for this endpoint.")
            with self.service.cond:
                self.service.stats.calls[operation] = self.service.stats.calls.get(operation, 0) + 1
            payload = handler(request, body)
            response = Response(json.dumps(payload), status=200, content_type=CONTENT_TYPE)
            response.headers["x-amzn-RequestId"] = request_id
        except SqsError as error:
            response = error.response(request_id)
        if host_log is not None:
            logged = (
                {k: v for k, v in body.items() if k != "ReceiptHandle"} if isinstance(body, dict) else None
            )
            host_log.append(
                LoggedRequest(f"sqs.{operation}", "POST", request.path, {}, logged, response.status_code)
            )
        return response

    # ---------------------------------------------------------------- operations

    def CreateQueue(self, request: Request, body: JSON) -> JSON:
        name = body.get("QueueName")
        if not isinstance(name, str) or not name or len(name) > 80:
            raise SqsError("InvalidParameterValue", "Can only include alphanumeric characters, hyphens, ...")
        attributes = body.get("Attributes") or {}
        if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
            raise SqsError("InvalidAttributeValue", "Attribute values must be strings.")
        unknown = set(attributes) - {*DEFAULT_ATTRIBUTES, "RedrivePolicy"}
        if unknown:
            raise SqsError("InvalidAttributeName", f"Unknown Attribute {sorted(unknown)[0]}.")
        queue = self.service.create_queue(name, attributes)
        return {"QueueUrl": queue_url(self._public_base(request), queue)}

    def GetQueueUrl(self, request: Request, body: JSON) -> JSON:
        name = body.get("QueueName")
        if not isinstance(name, str) or not name:
            raise SqsError("MissingParameter", "The request must contain the parameter QueueName.")
        queue = self.service.queue_named(name)
        return {"QueueUrl": queue_url(self._public_base(request), queue)}

    def GetQueueAttributes(self, request: Request, body: JSON) -> JSON:
        queue = self.service.queue_by_url(body.get("QueueUrl"))
        names = body.get("AttributeNames") or ["All"]
        with self.service.cond:
            now = self.service.now()
            attributes = {
                **queue.attributes,
                "QueueArn": queue.arn,
                "CreatedTimestamp": str(queue.created_ms // 1000),
                "ApproximateNumberOfMessages": str(sum(m.visible_at <= now for m in queue.messages)),
                "ApproximateNumberOfMessagesNotVisible": str(sum(m.visible_at > now for m in queue.messages)),
            }
        if "All" in names:
            return {"Attributes": attributes}
        known = {*attributes, *DEFAULT_ATTRIBUTES, "RedrivePolicy"}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SqsError("InvalidAttributeName", f"Unknown Attribute {unknown[0]}.")
        return {"Attributes": {n: attributes[n] for n in names if n in attributes}}

    def SendMessage(self, request: Request, body: JSON) -> JSON:
        queue = self.service.queue_by_url(body.get("QueueUrl"))
        text = body.get("MessageBody")
        if not isinstance(text, str):
            raise SqsError("MissingParameter", "The request must contain the parameter MessageBody.")
        message = self.service.send(queue, text)
        return {"MessageId": message.message_id, "MD5OfMessageBody": message.md5}

    def ReceiveMessage(self, request: Request, body: JSON) -> JSON:
        queue = self.service.queue_by_url(body.get("QueueUrl"))
        limit = _int_param(body, "MaxNumberOfMessages", 1, 1, MAX_BATCH)
        visibility = _int_param(
            body, "VisibilityTimeout", int(queue.attributes["VisibilityTimeout"]), 0, MAX_VISIBILITY_SECONDS
        )
        wait = _int_param(
            body,
            "WaitTimeSeconds",
            int(queue.attributes["ReceiveMessageWaitTimeSeconds"]),
            0,
            MAX_WAIT_SECONDS,
        )
        wanted = set(body.get("MessageSystemAttributeNames") or []) | set(body.get("AttributeNames") or [])
        messages = self.service.receive(queue, limit=limit, visibility=visibility, wait=wait)
        if not messages:
            return {}
        out = []
        for message in messages:
            attributes = {
                "ApproximateReceiveCount": str(message.receive_count),
                "SentTimestamp": str(message.sent_ms),
                "ApproximateFirstReceiveTimestamp": str(message.first_receive_ms),
                "SenderId": "AIDASIMULATEDSPAPI00001",
            }
            entry: JSON = {
                "MessageId": message.message_id,
                "ReceiptHandle": message.receipt_handle,
                "MD5OfBody": message.md5,
                "Body": message.body,
            }
            chosen = attributes if "All" in wanted else {k: v for k, v in attributes.items() if k in wanted}
            if chosen:
                entry["Attributes"] = chosen
            out.append(entry)
        return {"Messages": out}

    def DeleteMessage(self, request: Request, body: JSON) -> JSON:
        queue = self.service.queue_by_url(body.get("QueueUrl"))
        self.service.delete(queue, body.get("ReceiptHandle"))
        return {}

    def DeleteMessageBatch(self, request: Request, body: JSON) -> JSON:
        queue = self.service.queue_by_url(body.get("QueueUrl"))
        entries = body.get("Entries")
        if not isinstance(entries, list) or not entries:
            raise SqsError(
                "EmptyBatchRequest", "There should be at least one DeleteMessageBatchRequestEntry."
            )
        if len(entries) > MAX_BATCH:
            raise SqsError(
                "TooManyEntriesInBatchRequest", f"Maximum number of entries per request are {MAX_BATCH}."
            )
        ids = [e.get("Id") if isinstance(e, dict) else None for e in entries]
        if len(set(map(str, ids))) != len(ids):
            raise SqsError("BatchEntryIdsNotDistinct", "Two or more batch entries have the same Id.")
        successful, failed = [], []
        for entry in entries:
            try:
                self.service.delete(queue, entry.get("ReceiptHandle"))
                successful.append({"Id": entry.get("Id")})
            except SqsError as error:
                failed.append(
                    {"Id": entry.get("Id"), "SenderFault": True, "Code": error.code, "Message": error.message}
                )
        return {"Successful": successful, "Failed": failed}

    def ChangeMessageVisibility(self, request: Request, body: JSON) -> JSON:
        queue = self.service.queue_by_url(body.get("QueueUrl"))
        seconds = _int_param(body, "VisibilityTimeout", 0, 0, MAX_VISIBILITY_SECONDS)
        self.service.change_visibility(queue, body.get("ReceiptHandle"), seconds)
        return {}

    def PurgeQueue(self, request: Request, body: JSON) -> JSON:
        self.service.purge(self.service.queue_by_url(body.get("QueueUrl")))
        return {}
