"""The agent's line to the gateway: signed requests out, answers in, each answer verified against the
pinned gateway certificate and bound to its request (RequestDigest) before anything reads it.

An answer that fails verification is treated exactly like no answer: the agent cannot know what the
gateway did, so it keeps the request and sends the same bytes again later (spec section 2)."""
from __future__ import annotations

import datetime as dt
import time

import httpx
from lxml import etree

from agent.config import AgentConfig
from gateway.protocol import client as dl


class NoAnswer(RuntimeError):
    """No usable answer: connection refused or dropped, timeout, or an answer that failed verification."""


class Link:
    def __init__(self, cfg: AgentConfig):
        self.url = cfg.gateway
        self.client = dl.Client(cfg.gateway, cfg.client, cfg.operator, cfg.key.read_bytes(),
                                cfg.certificate.read_bytes(), cfg.gateway_certificate.read_bytes(),
                                http=dl.http_client(cfg.timeout_seconds, tls_ca=cfg.tls_ca,
                                                    tls_certificate=cfg.tls_certificate, tls_key=cfg.tls_key))

    def sign(self, operation: etree._Element) -> tuple[str, float, bytes]:
        """(MessageId, Created as unix time, the signed bytes) of a new request."""
        message_id, created = dl.new_message_id(), dt.datetime.now(dt.UTC).replace(microsecond=0)
        return message_id, created.timestamp(), self.client.request(operation, message_id=message_id,
                                                                    created=created.astimezone())

    def post(self, body: bytes) -> dl.Answer:
        try:
            return self.client.post(body)
        except httpx.HTTPError as err:
            raise NoAnswer(f"gateway {self.url} unreachable: {type(err).__name__}: {err}") from err
        except Exception as err:  # any failure to verify or read the answer: not trusted
            raise NoAnswer(f"the answer from {self.url} failed verification and was ignored: "
                                     f"{type(err).__name__}: {err}") from err

    def call(self, operation: etree._Element) -> dl.Answer:
        return self.post(self.sign(operation)[2])

    @staticmethod
    def age(signed_at: float) -> float:
        return time.time() - signed_at
