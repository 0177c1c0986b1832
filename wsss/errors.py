"""One error type for bad input, reported as a single line by every stage."""

from __future__ import annotations


class WsssError(Exception):
    """Bad input or configuration.

    The message must be one line naming the offending file or config key and
    what is wrong with it, e.g. ``"data/voc/Annotations/x.xml: malformed XML (line 3)"``.
    Stages catch it, print ``error: <message>`` to stderr and exit with status 1.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def require(condition: bool, message: str) -> None:
    """Raise :class:`WsssError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise WsssError(message)
