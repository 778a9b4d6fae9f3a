"""A real SMTP server on loopback for the digest tests: ``aiosmtpd`` in a thread, recording what it receives.

It can refuse chosen recipients (a 550, as a server does for an unknown mailbox), and be stopped and
started again on the same port (the server going down in the middle of a run).
"""
from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """An aiosmtpd handler: keeps every accepted message; refuses the addresses in ``refuse``."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 -- aiosmtpd's name
        if address in self.refuse:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's name
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self):
        self.port = free_port()
        self.handler = Recorder()
        self.controller: Controller | None = None

    def start(self) -> "SMTPServer":
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[bytes]:
        """The raw messages received, oldest first."""
        with self.handler.lock:
            return [raw for _, _, raw in self.handler.messages]

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        """``(MAIL FROM, [RCPT TO])`` of each message received."""
        with self.handler.lock:
            return [(sender, rcpts) for sender, rcpts, _ in self.handler.messages]

    def parsed(self) -> list[EmailMessage]:
        with self.handler.lock:
            return [email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in self.handler.messages]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.parsed() if m["To"] == address]

    def env(self) -> dict[str, str]:
        """The PAPERFEED_* variables that point ``paperfeed digest`` at this server."""
        return {"PAPERFEED_SMTP_HOST": "127.0.0.1", "PAPERFEED_SMTP_PORT": str(self.port),
                "PAPERFEED_SMTP_TLS": "none", "PAPERFEED_SMTP_FROM": "Paperfeed <digest@paperfeed.test>",
                "PAPERFEED_SMTP_TIMEOUT": "10", "PAPERFEED_PUBLIC_URL": "https://paperfeed.test"}

    def overrides(self) -> dict:
        """The same as ``load_settings`` keyword overrides."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_tls": "none",
                "smtp_from": "Paperfeed <digest@paperfeed.test>", "smtp_timeout": 10.0,
                "public_url": "https://paperfeed.test"}


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML bodies of a multipart/alternative message."""
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()
