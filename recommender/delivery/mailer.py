"""Sending email over SMTP with the standard library (``smtplib``), one connection per run.

Failures come in two kinds, because a digest run treats them differently:

- :class:`Refused`: this message could not be delivered (the server refused the recipient, the sender
  or the data, permanently (5xx) or for now (4xx)). The run records it for that user and goes on.
- :class:`Unavailable`: the server cannot be reached or dropped the connection and would not take it
  back (refused, timed out, TLS or login failed). Every later user would fail the same way, so the
  run stops sending and leaves them all pending for the next run.
"""
from __future__ import annotations

import dataclasses
import smtplib
import socket
import ssl
from email.message import EmailMessage


class MailError(Exception):
    pass


class Refused(MailError):
    """The server would not take this message (``code`` is its SMTP reply code)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code

    @property
    def permanent(self) -> bool:
        return self.code is not None and 500 <= self.code < 600


class Unavailable(MailError):
    """The server cannot be reached or talked to now."""


class NotConfigured(MailError, ValueError):
    """Email settings are missing; the message says which."""

    pass


@dataclasses.dataclass(frozen=True)
class SMTPConfig:
    host: str
    port: int
    user: str
    password: str
    sender: str
    tls: str  # "starttls", "ssl" or "none"
    timeout: float

    @classmethod
    def from_settings(cls, settings) -> "SMTPConfig":
        missing = [env for env, value in (("PAPERFEED_SMTP_HOST", settings.smtp_host),
                                          ("PAPERFEED_SMTP_FROM", settings.smtp_from)) if not value]
        if missing:
            raise NotConfigured(f"email is not set up: set {' and '.join(missing)} (see the README's settings "
                                "table), or use --dry-run")
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_user, settings.smtp_password,
                   settings.smtp_from, settings.smtp_tls, settings.smtp_timeout)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {' '.join(text.split())}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        return f"{code} {' '.join(text.split())}"
    return " ".join(str(exc).split()) or type(exc).__name__


class Mailer:
    """Sends messages through one SMTP connection, opened on the first message and reopened once if the
    server dropped it. Use as a context manager, which says QUIT at the end."""

    def __init__(self, config: SMTPConfig):
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        try:
            if c.tls == "ssl":
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
                if c.tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if c.user:
                smtp.login(c.user, c.password)
            return smtp
        except smtplib.SMTPAuthenticationError as exc:
            raise Unavailable(f"SMTP login to {c.host}:{c.port} failed: {_describe(exc)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise Unavailable(f"SMTP server {c.host}:{c.port}: {_describe(exc)} (check PAPERFEED_SMTP_TLS)") from None
        except (OSError, smtplib.SMTPException) as exc:  # refused, DNS, timeout, TLS, 4xx/5xx greeting
            raise Unavailable(f"cannot reach the SMTP server {c.host}:{c.port}: {_describe(exc)}") from None

    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` to the server; :class:`Refused` or :class:`Unavailable` if it did not take it."""
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                self._smtp.send_message(message)
                return
            except smtplib.SMTPRecipientsRefused as exc:
                code = next(iter(exc.recipients.values()))[0]
                raise Refused(f"the server refused the address: {_describe(exc)}", code) from None
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                raise Refused(f"the server refused the message: {_describe(exc)}", exc.smtp_code) from None
            except (smtplib.SMTPServerDisconnected, OSError) as exc:  # dropped or timed out mid-message
                self._drop()
                if attempt == 2:
                    raise Unavailable(f"the SMTP server {self.config.host}:{self.config.port} dropped the "
                                      f"connection: {_describe(exc)}") from None
            except smtplib.SMTPResponseException as exc:
                self._drop()
                raise Refused(f"the server answered {_describe(exc)}", exc.smtp_code) from None

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError, socket.timeout):
            smtp.close()
