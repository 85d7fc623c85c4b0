"""The files of a message, as the emails Porch sends show them: each one's name and
size with a download link, never the file itself. An attachment would make every
notification as heavy as its files, and a mail client would show a file the relay
never judged as if the business had sent it.

The links are emailed ones (relay/tokens.py EMAILED_ATTACHMENT_MAX_AGE): an email is
read and answered days later, when a one-hour link would be dead.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from relay.models import Attached, Links, Message
from relay.tokens import EMAILED_ATTACHMENT_MAX_AGE

Say = Callable[..., str]  # catalogue.text in the recipient's language
DAY = 24 * 60 * 60
KB = 1000  # as relay/conversations/files.py counts a site's MB
MB = 1000 * KB
MARK = "📎"


def human_size(size: int, say: Say) -> str:
    """ "512 bytes", "48 KB", "2.4 MB", in the recipient's language ("2,4 Mo")."""
    if size < KB:
        return say("server.mail.size.bytes", size=size)
    if round(size / KB) < KB:
        return say("server.mail.size.kb", size=round(size / KB))
    whole, tenth = divmod(round(size / (MB / 10)), 10)
    return say("server.mail.size.mb", whole=whole, tenth=tenth)


class FileLinks:
    """A message's files as one email shows them: its links, its recipient's language."""

    def __init__(self, links: Links, say: Say) -> None:
        self.links = links
        self.say = say

    def lines(self, message: Message) -> list[str]:
        """One line per file for the text part: `📎 name (size) <link>`; the angle
        brackets keep a long link whole when a client wraps the line (RFC 3986, C)."""
        return [f"{MARK} {a.name} ({self.size(a)}) <{self.links(a)}>" for a in message.attachments]

    def html(self, message: Message) -> str:
        return "".join(
            f'<div>{MARK} <a href="{html.escape(self.links(a))}">{html.escape(a.name)}</a>'
            f" ({html.escape(self.size(a))})</div>"
            for a in message.attachments
        )

    def expiry(self, messages: Sequence[Message]) -> list[str]:
        """How long the links work, when the email has any."""
        if not any(message.attachments for message in messages):
            return []
        return [self.say("server.mail.files_expire", days=EMAILED_ATTACHMENT_MAX_AGE // DAY)]

    def size(self, attached: Attached) -> str:
        return human_size(attached.size, self.say)
