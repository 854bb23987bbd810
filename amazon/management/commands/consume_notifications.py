"""`manage.py consume_notifications [--max-polls N] [--idle-if-unconfigured]`

The long-running reader of the SQS queue Amazon delivers pricing notifications to (production; runs
beside the Celery worker, one or more of them). Each message goes through the same intake as
`POST /amazon/notifications` and is deleted once its rows are committed (amazon/notifications_sqs.py).
SIGTERM or SIGINT stops it gracefully: the long poll in flight (at most
AMAZON_NOTIFICATIONS_SQS_WAIT_SECONDS) ends, its messages are stored and deleted, then it exits; a second
signal stops it at once. Platform-wide like the HTTP intake: the notification names the seller, the
routing table names the tenant(s), so there is no `--tenant`.

Without AMAZON_NOTIFICATIONS_SQS_QUEUE_URL it refuses to start, unless `--idle-if-unconfigured` (what
docker-compose uses, so a deployment on the HTTP intake alone has no restart loop): then it says so and
waits for SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from amazon.notifications_sqs import NotConfigured, NotificationsConsumer


class Command(BaseCommand):
    help = "Read Amazon's notifications from the SQS queue into the intake until stopped (SIGTERM)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-polls",
            type=int,
            default=None,
            help="Stop after this many receives (default: run until stopped).",
        )
        parser.add_argument(
            "--idle-if-unconfigured",
            action="store_true",
            help="Without a queue configured, wait for SIGTERM instead of failing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        max_polls: int | None = options["max_polls"]
        if max_polls is not None and max_polls < 1:
            raise CommandError("--max-polls must be at least 1.")
        stop = threading.Event()
        consumer: NotificationsConsumer | None
        try:
            consumer = NotificationsConsumer(stop=stop)
        except NotConfigured as error:
            if not options["idle_if_unconfigured"]:
                raise CommandError(str(error)) from None
            consumer = None

        def graceful(signum: int, frame: FrameType | None) -> None:
            self.stdout.write(f"{signal.Signals(signum).name}: finishing the current receive, then stopping")
            stop.set()
            # A second signal is not caught: it stops the process at once (SQS redelivers what was in flight).
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = {s: signal.signal(s, graceful) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            if consumer is None:
                self.stdout.write(
                    "no SQS queue configured (AMAZON_NOTIFICATIONS_SQS_QUEUE_URL): idle until stopped"
                )
                stop.wait()
                return
            self.stdout.write(f"consuming notifications from {consumer.queue_url}")
            counts = consumer.run(max_polls=max_polls)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        summary = ", ".join(f"{name} {value}" for name, value in consumer.summary().items() if value)
        self.stdout.write(f"stopped ({summary or 'nothing received'})")
        if counts.receive_failed and not counts.received:
            raise CommandError("The queue could not be read (see the log).")
