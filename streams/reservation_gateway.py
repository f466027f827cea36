"""Request/reply over Kafka for the HTTP API: produce a command keyed by SKU, wait for the
owning worker's reply on the reply topic."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

import structlog
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from stocksync.adapters.kafka import clients
from stocksync.codec.avro import decode
from stocksync.codec.reservations import encode_command, reply_from_record
from stocksync.config import Settings
from stocksync.domain.reservations import ReservationCommand, ReservationReply

log = structlog.get_logger("stocksync.reservations")


class CommandNotSent(RuntimeError):
    """Kafka did not take the command; nothing was decided, the request can be retried."""


class ReservationGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._waiting: defaultdict[str, list[asyncio.Future[ReservationReply]]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._producer = clients.producer(settings, f"{settings.app_id}-reservations", linger_ms=1)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        consumer = clients.log_reader(
            self.settings, "reply-reader", **{"enable.partition.eof": False}
        )
        topic = self.settings.topics.reservation_replies
        # Start at the current end, resolved now, so no reply to a request sent after this
        # point can be missed.
        assignment = [
            TopicPartition(topic, p, high)
            for p, (_, high) in clients.watermarks(consumer, topic).items()
        ]
        consumer.assign(assignment)
        threading.Thread(target=self._read_replies, args=(consumer,), daemon=True).start()
        threading.Thread(target=self._serve_deliveries, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._producer.flush(5)

    def _serve_deliveries(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _read_replies(self, consumer: Consumer) -> None:
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.1)
                if msg is None or msg.error():
                    continue
                try:
                    _, record = decode(msg.value())
                    reply = reply_from_record(record)
                except Exception as exc:
                    log.warning("reply_undecodable", error=str(exc))
                    continue
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(self._resolve, reply)
        finally:
            consumer.close()

    def _resolve(self, reply: ReservationReply) -> None:
        for future in self._waiting.pop(reply.request_id, []):
            if not future.done():
                future.set_result(reply)

    async def request(self, command: ReservationCommand, timeout: float) -> ReservationReply | None:
        """The owning worker's reply, or None when none came within the timeout."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ReservationReply] = loop.create_future()
        self._waiting[command.request_id].append(future)
        sent: asyncio.Future[KafkaError | None] = loop.create_future()

        def settle(err: KafkaError | None) -> None:
            if not sent.done():
                sent.set_result(err)

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(settle, err)

        try:
            self._producer.produce(
                self.settings.topics.reservation_commands,
                key=command.sku.encode(),
                value=encode_command(command),
                on_delivery=delivered,
            )
            error = await asyncio.wait_for(sent, timeout)
            if error is not None:
                raise CommandNotSent(str(error))
            return await asyncio.wait_for(future, timeout)
        except (TimeoutError, BufferError):
            return None
        finally:
            waiting = self._waiting.get(command.request_id)
            if waiting and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiting[command.request_id]
