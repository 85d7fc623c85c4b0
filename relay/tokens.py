"""Everything Porch signs, one salt per purpose (itsdangerous).

Keys come newest first (PORCH_SECRET_KEYS); the newest signs, every key verifies,
so a key can be rotated in without signing anyone out and retired later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from relay.errors import InvalidToken

VISITOR_SALT = "visitor"
OWNER_SALT = "owner"
UNSUBSCRIBE_SALT = "unsubscribe"
RESUME_SALT = "resume"
RESUME_MAX_AGE = 30 * 60  # seconds a resume link works (DESIGN.md: 30 min, single use)
LOGIN_SALT = "owner-login"
LOGIN_MAX_AGE = 15 * 60  # seconds an inbox sign-in link works (single use)
SESSION_SALT = "owner-session"
ATTACHMENT_SALT = "attachment"
ATTACHMENT_MAX_AGE = 60 * 60  # seconds a download link works; each read of a thread renews it
# An emailed download link cannot be renewed: it must work while the email is still
# being read and answered, and no longer than a month, so that an old mailbox is not a
# lasting key to the files.
EMAILED_ATTACHMENT_MAX_AGE = 30 * 24 * 60 * 60
CSRF_SALT = b"csrf"
REPLY_TAG_SALT = b"reply-tag"
# 26 base32 characters = 130 bits: unguessable, and "r+" + 26 stays far under the
# 64-character local part of RFC 5321 (4.5.3.1.1).
REPLY_TAG_CHARS = 26


@dataclass(frozen=True)
class VisitorClaim:
    visitor: str
    site: str
    epoch: int = 0  # "sign out everywhere" moves the visitor's epoch: older tokens stop


@dataclass(frozen=True)
class ResumeClaim:
    visitor: str
    site: str
    email: str
    jti: str  # recorded when used: a link works once
    epoch: int = 0  # the visitor's token epoch when it was sent: signing out ends it


@dataclass(frozen=True)
class LoginClaim:
    email: str
    jti: str  # recorded when used: a link works once


@dataclass(frozen=True)
class OwnerClaim:
    site: str


Claim = VisitorClaim | OwnerClaim


def new_secret_key() -> str:
    """256 bits of randomness, URL-safe: fits an environment variable unquoted."""
    return secrets.token_urlsafe(32)


class Tokens:
    def __init__(self, secret_keys: tuple[str, ...]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        # itsdangerous signs with the *last* key of the list and verifies with all.
        keys = list(reversed(secret_keys))
        self._visitor = URLSafeSerializer(keys, salt=VISITOR_SALT)
        self._owner = URLSafeSerializer(keys, salt=OWNER_SALT)
        self._unsubscribe = URLSafeSerializer(keys, salt=UNSUBSCRIBE_SALT)
        self._resume = URLSafeTimedSerializer(keys, salt=RESUME_SALT)
        self._login = URLSafeTimedSerializer(keys, salt=LOGIN_SALT)
        self._session = URLSafeSerializer(keys, salt=SESSION_SALT)
        self._attachment = URLSafeTimedSerializer(keys, salt=ATTACHMENT_SALT)
        self._keys = [key.encode() for key in secret_keys]  # newest first

    def reply_tag(self, thread: str, recipient: str) -> str:
        """The tag of r+TAG@reply-domain: bound to the thread and to whom it was sent."""
        return _reply_tag(self._keys[0], thread, recipient)

    def reply_tag_matches(self, tag: str, thread: str, recipient: str) -> bool:
        tag = tag.lower()
        return any(
            hmac.compare_digest(_reply_tag(key, thread, recipient), tag) for key in self._keys
        )

    def unsubscribe_token(self, address: str, site: str) -> str:
        return str(self._unsubscribe.dumps({"a": address.lower(), "s": site}))

    def read_unsubscribe(self, token: str) -> tuple[str, str]:
        payload = _loads(self._unsubscribe, token)
        if payload is None or not _strings(payload, "a", "s"):
            raise InvalidToken("this unsubscribe link is not valid")
        return payload["a"], payload["s"]

    def visitor_token(self, visitor: str, site: str, epoch: int = 0) -> str:
        payload: dict[str, Any] = {"v": visitor, "s": site}
        if epoch:
            payload["n"] = epoch
        return str(self._visitor.dumps(payload))

    def resume_token(self, visitor: str, site: str, email: str, epoch: int = 0) -> str:
        payload: dict[str, Any] = {"v": visitor, "s": site, "e": email}
        payload["j"] = secrets.token_urlsafe(12)
        if epoch:
            payload["n"] = epoch
        return str(self._resume.dumps(payload))

    def read_resume(self, token: str) -> ResumeClaim:
        """A resume link's claim; InvalidToken with reason expired or invalid."""
        try:
            payload = self._resume.loads(token, max_age=RESUME_MAX_AGE)
        except SignatureExpired:
            raise InvalidToken(
                "this link has expired: links work for 30 minutes; ask for a new one",
                reason="expired",
            ) from None
        except (BadData, UnicodeError, ValueError):
            payload = None
        epoch = payload.get("n", 0) if isinstance(payload, dict) else None
        if not _strings(payload, "v", "s", "e", "j") or type(epoch) is not int:
            raise InvalidToken("this link is not valid: it was altered or cut", reason="invalid")
        return ResumeClaim(payload["v"], payload["s"], payload["e"], payload["j"], epoch)

    def login_token(self, email: str) -> str:
        """The token of an inbox sign-in link (the #login= fragment)."""
        return str(self._login.dumps({"e": email.lower(), "j": secrets.token_urlsafe(12)}))

    def read_login(self, token: str) -> LoginClaim:
        try:
            payload = self._login.loads(token, max_age=LOGIN_MAX_AGE)
        except SignatureExpired:
            raise InvalidToken(
                "this sign-in link has expired: links work for 15 minutes; ask for a new one",
                reason="expired",
            ) from None
        except (BadData, UnicodeError, ValueError):
            payload = None
        if not _strings(payload, "e", "j"):
            raise InvalidToken(
                "this sign-in link is not valid: it was altered or cut", reason="invalid"
            )
        return LoginClaim(payload["e"], payload["j"])

    def attachment_token(self, attachment: str, *, emailed: bool = False) -> str:
        """What a download link carries: the attachment, signed, with its time. An
        emailed link says so, and works for EMAILED_ATTACHMENT_MAX_AGE instead of
        ATTACHMENT_MAX_AGE."""
        payload: str | dict[str, Any] = {"a": attachment, "e": 1} if emailed else attachment
        return str(self._attachment.dumps(payload))

    def read_attachment(self, token: str) -> str:
        """The attachment a download link names; InvalidToken when altered or expired."""
        expired = InvalidToken(
            "this download link has expired: open the conversation again", reason="expired"
        )
        try:
            payload, signed = self._attachment.loads(
                token, max_age=EMAILED_ATTACHMENT_MAX_AGE, return_timestamp=True
            )
        except SignatureExpired:
            raise expired from None
        except (BadData, UnicodeError, ValueError):
            payload = signed = None
        emailed = isinstance(payload, dict) and payload.keys() == {"a", "e"} and payload["e"] == 1
        attachment = payload["a"] if emailed else payload
        if not isinstance(attachment, str) or signed is None:
            raise InvalidToken("this download link is not valid", reason="invalid")
        if not emailed and time.time() - signed.timestamp() > ATTACHMENT_MAX_AGE:
            raise expired
        return attachment

    def session_cookie(self, session_id: str) -> str:
        return str(self._session.dumps(session_id))

    def read_session_cookie(self, cookie: str) -> str | None:
        """The session id a cookie carries, or None if it was not signed here."""
        session_id = _loads(self._session, cookie)
        return session_id if isinstance(session_id, str) else None

    def csrf_token(self, session_id: str) -> str:
        """Bound to the session: a page of another site can neither read nor guess it."""
        return _csrf(self._keys[0], session_id)

    def csrf_matches(self, session_id: str, given: str) -> bool:
        return given.isascii() and any(
            hmac.compare_digest(_csrf(key, session_id), given) for key in self._keys
        )

    def owner_token(self, site: str) -> str:
        return str(self._owner.dumps({"s": site}))

    def read(self, token: str) -> Claim:
        """A visitor or owner claim, or InvalidToken; the salt tells them apart."""
        payload = _loads(self._visitor, token)
        if payload is not None and _strings(payload, "v", "s"):
            epoch = payload.get("n", 0)
            return VisitorClaim(payload["v"], payload["s"], epoch if isinstance(epoch, int) else -1)
        payload = _loads(self._owner, token)
        if payload is not None and _strings(payload, "s"):
            return OwnerClaim(site=payload["s"])
        raise InvalidToken("the token is not valid: it was altered, truncated or not issued here")

    def read_visitor(self, token: str) -> VisitorClaim:
        claim = self.read(token)
        if not isinstance(claim, VisitorClaim):
            raise InvalidToken("a visitor token is needed here")
        return claim

    def read_owner(self, token: str) -> OwnerClaim:
        claim = self.read(token)
        if not isinstance(claim, OwnerClaim):
            raise InvalidToken("an owner token is needed here")
        return claim


def _csrf(key: bytes, session_id: str) -> str:
    return hmac.new(key, CSRF_SALT + b"\0" + session_id.encode(), hashlib.sha256).hexdigest()


def _reply_tag(key: bytes, thread: str, recipient: str) -> str:
    message = REPLY_TAG_SALT + b"\0" + thread.encode() + b"\0" + recipient.lower().encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:REPLY_TAG_CHARS]


def _loads(serializer: URLSafeSerializer, token: str) -> Any:
    try:
        return serializer.loads(token)
    except (BadData, UnicodeError, ValueError):
        return None


def _strings(payload: Any, *keys: str) -> bool:
    return isinstance(payload, dict) and all(isinstance(payload.get(k), str) for k in keys)
