"""The conversation core: the one write path (core.py), who is told of a message
(notify.py), automatic replies (away.py), and the live fan-out (bus.py, presence.py).
It knows no web edge and no channel: they call it."""

from relay.conversations.core import Actor, Conversations

__all__ = ["Actor", "Conversations"]
