"""The SQS transport of the notifications intake (docs/amazon.md "Notifications over SQS").

In production Amazon's Notifications API puts each ANY_OFFER_CHANGED / PRICING_HEALTH notification on our
SQS queue (amazon/notifications_subscribe.py creates the destination and the subscriptions); the message
body is the notification JSON. `manage.py consume_notifications` runs `NotificationsConsumer.run()`:

- long-polls the queue (AMAZON_NOTIFICATIONS_SQS_WAIT_SECONDS, up to 10 messages a receive) with boto3,
  which signs with the standard AWS credentials chain;
- hands each body to `amazon.notifications.notification_intake`, the same parse / de-duplicate / route /
  store / hand-on path as the HTTP intake. The origin check is SQS itself: the queue policy lets only
  Amazon's SP-API account send and only our credentials receive, so there is no signature to check;
- deletes a message only after `notification_intake` returned, i.e. after its rows committed (it runs
  outside any transaction). A crash in between means SQS delivers it again after the visibility timeout
  (AMAZON_NOTIFICATIONS_SQS_VISIBILITY_TIMEOUT) and de-duplication answers "duplicate": one row;
- a message we cannot take (not JSON, wrong fields, another notification type, too large) is *poison*:
  counted and logged (id, receive count, error code; never its content). When the queue has a redrive
  policy (read once at start) it is left alone, so SQS moves it to the dead-letter queue after
  `maxReceiveCount` receives, where it can be read and replayed. Without one it is deleted once it has been
  received AMAZON_NOTIFICATIONS_SQS_MAX_RECEIVES times (a warning is logged), so it does not circulate for
  the queue's retention period;
- a failure on our side (database or Redis down) leaves the message for redelivery and backs off;
- stops gracefully when `stop` is set (SIGTERM/SIGINT in the command): the receive in flight finishes,
  its messages are stored and deleted, then `run()` returns.

Counters (besides the intake's own accepted / duplicate / unrouted / refused_*) go to the same Redis hash
with the prefix `sqs_`: received, deleted, poison_left, poison_deleted, failed, delete_failed,
receive_failed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import close_old_connections, transaction

from amazon.notifications import COUNTS_KEY, NotificationRefused, notification_intake
from config.redis import redis_client

logger = logging.getLogger(__name__)

MAX_MESSAGES = 10  # SQS's most per receive
#: After a failed receive (network, credentials, SQS down): wait this long, doubling up to the maximum.
BACKOFF_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0


class NotConfigured(Exception):
    """AMAZON_NOTIFICATIONS_SQS_QUEUE_URL is not set."""


def sqs_client() -> Any:
    """A boto3 SQS client for the configured region and endpoint. Credentials: boto3's standard chain.
    Outside production, with an endpoint set (the simulator, which accepts any SigV4 signature) and no
    credentials anywhere, it signs with placeholder keys."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=settings.AMAZON_NOTIFICATIONS_SQS_REGION)
    endpoint = settings.AMAZON_NOTIFICATIONS_SQS_ENDPOINT_URL or None
    keys: dict[str, str] = {}
    if endpoint and not settings.PRODUCTION and session.get_credentials() is None:
        keys = {"aws_access_key_id": "simulator", "aws_secret_access_key": "simulator"}
    config = Config(
        connect_timeout=5,
        # A long poll holds the connection open for up to WaitTimeSeconds.
        read_timeout=settings.AMAZON_NOTIFICATIONS_SQS_WAIT_SECONDS + 15,
        retries={"mode": "standard", "max_attempts": 3},
    )
    return session.client("sqs", endpoint_url=endpoint, config=config, **keys)


@dataclass
class ConsumerCounts:
    polls: int = 0
    received: int = 0
    accepted: int = 0
    duplicate: int = 0
    poison_left: int = 0
    poison_deleted: int = 0
    failed: int = 0
    deleted: int = 0
    delete_failed: int = 0
    receive_failed: int = 0


class NotificationsConsumer:
    """One consumer of the notifications queue. Several may run at once (SQS hands each message to one of
    them at a time; a redelivery is absorbed by de-duplication)."""

    def __init__(
        self,
        *,
        client: Any = None,
        queue_url: str | None = None,
        wait_seconds: int | None = None,
        visibility_timeout: int | None = None,
        max_receives: int | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.queue_url = queue_url or str(settings.AMAZON_NOTIFICATIONS_SQS_QUEUE_URL)
        if not self.queue_url:
            raise NotConfigured("Set AMAZON_NOTIFICATIONS_SQS_QUEUE_URL to the queue Amazon delivers to.")
        self.client = client or sqs_client()
        self.wait_seconds = min(
            max(settings.AMAZON_NOTIFICATIONS_SQS_WAIT_SECONDS if wait_seconds is None else wait_seconds, 0),
            20,
        )
        self.visibility_timeout = (
            settings.AMAZON_NOTIFICATIONS_SQS_VISIBILITY_TIMEOUT
            if visibility_timeout is None
            else visibility_timeout
        )
        self.max_receives = max(
            settings.AMAZON_NOTIFICATIONS_SQS_MAX_RECEIVES if max_receives is None else max_receives, 1
        )
        self.stop = stop or threading.Event()
        self.counts = ConsumerCounts()
        self.dead_letter_queue: bool | None = None  # read from the queue's RedrivePolicy at start
        self._backoff = 0.0

    # --- the loop -----------------------------------------------------------------------------------

    def run(self, *, max_polls: int | None = None) -> ConsumerCounts:
        """Receive and handle messages until `stop` is set (or `max_polls` receives were made)."""
        if transaction.get_connection().in_atomic_block:
            # A message is deleted once its rows are committed; inside a transaction they are not yet.
            raise RuntimeError("Run the notifications consumer outside a transaction.")
        self.read_queue()
        while not self.stop.is_set() and (max_polls is None or self.counts.polls < max_polls):
            self.poll_once()
        return self.counts

    def read_queue(self) -> None:
        """Whether the queue moves poison aside itself (a RedrivePolicy): decides what we do with it."""
        if self.dead_letter_queue is not None:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"]
            )
        except (BotoCoreError, ClientError) as error:
            # Not allowed to read attributes (or SQS unreachable): delete poison after N receives.
            logger.warning("notifications queue: attributes unreadable (%s)", _error_name(error))
            self.dead_letter_queue = False
            return
        self.dead_letter_queue = "RedrivePolicy" in (answer.get("Attributes") or {})
        logger.info(
            "notifications queue %s: %s",
            self.queue_url,
            "poison goes to its dead-letter queue"
            if self.dead_letter_queue
            else f"no dead-letter queue, poison is deleted after {self.max_receives} receives",
        )

    def poll_once(self) -> int:
        """One receive (a long poll) and its messages; returns how many were received."""
        from botocore.exceptions import BotoCoreError, ClientError

        self.counts.polls += 1
        close_old_connections()  # a long-running process: drop connections that broke or aged out
        try:
            answer = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=MAX_MESSAGES,
                WaitTimeSeconds=self.wait_seconds,
                VisibilityTimeout=self.visibility_timeout,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (BotoCoreError, ClientError) as error:
            self._count("receive_failed")
            self._backoff = min(max(self._backoff * 2, BACKOFF_SECONDS), BACKOFF_MAX_SECONDS)
            logger.warning(
                "notifications queue: receive failed (%s), next try in %.0fs",
                _error_name(error),
                self._backoff,
            )
            self.stop.wait(self._backoff)
            return 0
        self._backoff = 0.0
        messages: list[dict[str, Any]] = answer.get("Messages") or []
        self._count("received", len(messages))
        failed_before = self.counts.failed
        done = [message for message in messages if self.handle(message)]
        self.delete(done)
        if self.counts.failed > failed_before:
            self.stop.wait(BACKOFF_SECONDS)  # our side is failing: do not spin on the redeliveries
        return len(messages)

    # --- one message --------------------------------------------------------------------------------

    def handle(self, message: dict[str, Any]) -> bool:
        """Store one message through the intake; True when it may be deleted (stored, a duplicate, or
        poison to drop), False to leave it for SQS to deliver again."""
        message_id = str(message.get("MessageId", ""))
        body = str(message.get("Body", "")).encode()
        try:
            if len(body) > settings.AMAZON_NOTIFICATIONS_MAX_BYTES:
                raise NotificationRefused("The body is too large.", code="request_too_large", status=413)
            result = notification_intake(body)
        except NotificationRefused as refused:
            return self._poison(message, refused)
        except Exception:
            # Our side failed (database, Redis): nothing was committed; SQS delivers it again.
            logger.exception(
                "notifications queue: message %s could not be stored; left for redelivery", message_id
            )
            self._count("failed")
            return False
        self._count(result.outcome)  # accepted | duplicate
        return True

    def _poison(self, message: dict[str, Any], refused: NotificationRefused) -> bool:
        message_id = str(message.get("MessageId", ""))
        receives = _receive_count(message)
        if self.dead_letter_queue:
            logger.warning(
                "notifications queue: message %s refused (%s), receive %d; left for the dead-letter queue",
                message_id,
                refused.code,
                receives,
            )
            self._count("poison_left")
            return False
        if receives >= self.max_receives:
            logger.warning(
                "notifications queue: message %s refused (%s) %d times and the queue has no dead-letter "
                "queue; deleted",
                message_id,
                refused.code,
                receives,
            )
            self._count("poison_deleted")
            return True
        logger.warning(
            "notifications queue: message %s refused (%s), receive %d of %d before it is deleted",
            message_id,
            refused.code,
            receives,
            self.max_receives,
        )
        self._count("poison_left")
        return False

    def delete(self, messages: list[dict[str, Any]]) -> None:
        """Delete handled messages (one batch call). A failure only means SQS delivers them again."""
        if not messages:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        try:
            answer = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except (BotoCoreError, ClientError) as error:
            logger.warning("notifications queue: delete failed (%s); they come again", _error_name(error))
            self._count("delete_failed", len(entries))
            return
        failed = answer.get("Failed") or []
        for entry in failed:
            logger.warning("notifications queue: delete of one message failed (%s)", entry.get("Code"))
        self._count("deleted", len(answer.get("Successful") or []))
        self._count("delete_failed", len(failed))

    # --- counting -----------------------------------------------------------------------------------

    def _count(self, name: str, amount: int = 1) -> None:
        if not amount:
            return
        setattr(self.counts, name, getattr(self.counts, name) + amount)
        if name in ("accepted", "duplicate"):
            return  # the intake counts these itself
        try:
            redis_client().hincrby(COUNTS_KEY, f"sqs_{name}", amount)
        except redis.RedisError:
            logger.warning("notifications queue: could not count %s (Redis)", name)

    def summary(self) -> dict[str, int]:
        return asdict(self.counts)


def _receive_count(message: dict[str, Any]) -> int:
    raw = (message.get("Attributes") or {}).get("ApproximateReceiveCount", "1")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 1


def _error_name(error: Exception) -> str:
    code = getattr(error, "response", {}).get("Error", {}).get("Code") if hasattr(error, "response") else None
    return f"{type(error).__name__} {code}" if code else type(error).__name__
