"""Why a connection or a command failed, in words a user can act on.

Every failure that leaves the transport layer is a ``TransportError`` with one of
the ``GatherFailure`` kinds, so callers map it to a check ERROR without looking
at paramiko or python-socks exceptions. Messages are built from settings (host,
port, user, file and variable *names*), never from secret values; ``scrub``
is a second line of defence for text we did not write ourselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Literal, get_args

FailureKind = Literal["unreachable", "auth", "proxy", "proxy-auth", "host-key", "timeout", "permission", "probe"]

#: Every kind, for validation of saved failures.
FAILURE_KINDS: frozenset[str] = frozenset(get_args(FailureKind))

REDACTED = "<redacted>"


class TransportError(Exception):
    """A connection, authentication or command failure with a secret-free message."""

    def __init__(self, kind: FailureKind, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind: FailureKind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"TransportError({self.kind!r}, {self.message!r})"

    def scrubbed(self, secrets: Iterable[str]) -> TransportError:
        """The same error with every occurrence of ``secrets`` replaced."""
        cleaned = scrub(self.message, secrets)
        return self if cleaned == self.message else TransportError(self.kind, cleaned)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret value in ``text`` (longest first, so overlaps go too)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def unexpected(error: BaseException) -> str:
    """An exception nobody expected, for an ERROR message: its type, text and the
    line it came from (``EOFError at paramiko/channel.py:1234``), so a report says
    where to look instead of a bare ``EOFError:``."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    frames = error.__traceback__
    while frames is not None and frames.tb_next is not None:
        frames = frames.tb_next
    if frames is None:
        return text
    code = frames.tb_frame.f_code
    where = os.sep.join(code.co_filename.split(os.sep)[-2:])
    return f"{text} (at {where}:{frames.tb_lineno} in {code.co_name})"
