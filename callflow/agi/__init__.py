"""FastAGI protocol (pure) and its asyncio server."""

from callflow.agi.protocol import (
    CommandError,
    HangupNotice,
    Header,
    HeaderParser,
    IncompleteHeader,
    ProtocolError,
    Reply,
    ReplyEvent,
    ReplyParser,
    format_command,
)
from callflow.agi.server import AgiServer, Handler
from callflow.agi.session import (
    DEFAULT,
    AgiCommandError,
    AgiDisconnected,
    AgiError,
    AgiHangup,
    AgiSession,
    AgiTimeout,
)

__all__ = [
    "DEFAULT",
    "AgiCommandError",
    "AgiDisconnected",
    "AgiError",
    "AgiHangup",
    "AgiServer",
    "AgiSession",
    "AgiTimeout",
    "CommandError",
    "Handler",
    "HangupNotice",
    "Header",
    "HeaderParser",
    "IncompleteHeader",
    "ProtocolError",
    "Reply",
    "ReplyEvent",
    "ReplyParser",
    "format_command",
]
