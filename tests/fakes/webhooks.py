"""What the providers POST to the relay, built in their documented shapes, for tests.

- Telegram: the Update and Message objects of the Bot API reference
  (https://core.telegram.org/bots/api#update, #message, #photosize, #voice, #location,
  #sticker); a private chat's id is the user's id.
- WhatsApp Cloud API: the "messages" webhook reference (object
  "whatsapp_business_account", entry[].changes[] with field "messages"), its text, image,
  audio, location and sticker message references and its status reference (statuses[]
  with conversation and pricing while sent or delivered, errors[] when failed). Its
  timestamps are strings of Unix seconds.
- Messenger: the Messenger Platform webhook events (object "page", entry[].messaging[]):
  messages, messaging_referrals (an m.me link opened in an existing thread) and
  messaging_postbacks ("Get Started" on a new thread carries the referral). Its
  timestamps are numbers, in milliseconds.
- Meta's signature: X-Hub-Signature-256 is "sha256=" and the hex HMAC-SHA256 of the raw
  body with the app secret; the subscription check is a GET with hub.mode, hub.verify_token
  and hub.challenge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

WABA_ID = "102290129340398"  # the WhatsApp Business Account id an entry carries
BUSINESS_NUMBER = "15550783881"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
META_SIGNATURE_HEADER = "X-Hub-Signature-256"

# The error a failed status carries when the 24-hour customer service window had closed.
RE_ENGAGEMENT_ERROR: dict[str, Any] = {
    "code": 131047,
    "title": "Re-engagement message",
    "message": "Re-engagement message",
    "error_data": {
        "details": "Message failed to send because more than 24 hours have passed since "
        "the customer last replied to this number."
    },
    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
}


def _now() -> int:
    return int(time.time())


# -- Telegram -------------------------------------------------------------------------


def telegram_update(
    update_id: int,
    chat_id: int,
    text: str,
    *,
    first_name: str = "Ada",
    username: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    """A private text message to the bot."""
    content = {"text": text}
    return _telegram(update_id, chat_id, content, first_name, username, message_id, date)


def telegram_photo(
    update_id: int, chat_id: int, *, caption: str | None = None, first_name: str = "Ada"
) -> dict[str, Any]:
    """A photo: Telegram sends one PhotoSize per size, smallest first."""
    sizes = [
        {
            "file_id": f"AgAC-{update_id}-{side}",
            "file_unique_id": f"AQAD{update_id}{side}",
            "width": side,
            "height": side * 3 // 4,
            "file_size": side * 40,
        }
        for side in (90, 320, 1280)
    ]
    content: dict[str, Any] = {"photo": sizes}
    if caption is not None:
        content["caption"] = caption
    return _telegram(update_id, chat_id, content, first_name)


def telegram_document(
    update_id: int,
    chat_id: int,
    file_id: str,
    file_name: str,
    file_size: int,
    *,
    mime_type: str = "application/pdf",
    caption: str | None = None,
    first_name: str = "Ada",
) -> dict[str, Any]:
    """A file sent as a document (Document: file_id, file_name, mime_type, file_size)."""
    document = {
        "file_id": file_id,
        "file_unique_id": f"AgAD{update_id}",
        "file_name": file_name,
        "mime_type": mime_type,
        "file_size": file_size,
    }
    content: dict[str, Any] = {"document": document}
    if caption is not None:
        content["caption"] = caption
    return _telegram(update_id, chat_id, content, first_name)


def telegram_voice(
    update_id: int, chat_id: int, *, duration: int = 3, first_name: str = "Ada"
) -> dict[str, Any]:
    voice = {
        "file_id": f"AwAC-{update_id}",
        "file_unique_id": f"AgAD{update_id}",
        "duration": duration,
        "mime_type": "audio/ogg",
        "file_size": duration * 4000,
    }
    return _telegram(update_id, chat_id, {"voice": voice}, first_name)


def telegram_location(
    update_id: int,
    chat_id: int,
    latitude: float = 48.8566,
    longitude: float = 2.3522,
    *,
    first_name: str = "Ada",
) -> dict[str, Any]:
    location = {"latitude": latitude, "longitude": longitude}
    return _telegram(update_id, chat_id, {"location": location}, first_name)


def telegram_sticker(
    update_id: int, chat_id: int, *, emoji: str = "\N{THUMBS UP SIGN}", first_name: str = "Ada"
) -> dict[str, Any]:
    sticker = {
        "file_id": f"CAAC-{update_id}",
        "file_unique_id": f"AgAD{update_id}",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": emoji,
        "set_name": "PorchTest",
        "file_size": 20000,
    }
    return _telegram(update_id, chat_id, {"sticker": sticker}, first_name)


def _telegram(
    update_id: int,
    chat_id: int,
    content: dict[str, Any],
    first_name: str,
    username: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": first_name}
    chat: dict[str, Any] = {"id": chat_id, "first_name": first_name, "type": "private"}
    if username is not None:
        user["username"] = chat["username"] = username
    user["language_code"] = "en"
    message = {
        "message_id": update_id if message_id is None else message_id,
        "from": user,
        "chat": chat,
        "date": _now() if date is None else date,
        **content,
    }
    return {"update_id": update_id, "message": message}


def telegram_headers(secret_token: str) -> dict[str, str]:
    """The header Telegram sends with each update once setWebhook had a secret_token."""
    return {TELEGRAM_SECRET_HEADER: secret_token}


# -- WhatsApp -------------------------------------------------------------------------


def whatsapp_message(
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str,
    text: str,
    wamid: str,
    *,
    profile_name: str = "Ada Lovelace",
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A text a WhatsApp user sent to the business's number."""
    content = {"type": "text", "text": {"body": text}}
    return _whatsapp_inbound(
        phone_number_id, display_phone_number, wa_id, wamid, content, profile_name, timestamp
    )


def whatsapp_image(
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str,
    wamid: str,
    *,
    caption: str | None = None,
    profile_name: str = "Ada Lovelace",
    media_id: str | None = None,
) -> dict[str, Any]:
    """An image; its media id is derived from the wamid unless given."""
    image: dict[str, Any] = {"mime_type": "image/jpeg", **_media(wamid, media_id)}
    if caption is not None:
        image["caption"] = caption
    content = {"type": "image", "image": image}
    return _whatsapp_inbound(
        phone_number_id, display_phone_number, wa_id, wamid, content, profile_name
    )


def whatsapp_document(
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str,
    wamid: str,
    media_id: str,
    filename: str,
    *,
    mime_type: str = "application/pdf",
    caption: str | None = None,
    profile_name: str = "Ada Lovelace",
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "filename": filename,
        "mime_type": mime_type,
        **_media(wamid, media_id),
    }
    if caption is not None:
        document["caption"] = caption
    content = {"type": "document", "document": document}
    return _whatsapp_inbound(
        phone_number_id, display_phone_number, wa_id, wamid, content, profile_name
    )


def whatsapp_audio(
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str,
    wamid: str,
    *,
    voice: bool = True,
    profile_name: str = "Ada Lovelace",
) -> dict[str, Any]:
    """An audio message; `voice` is a voice note recorded in the app."""
    audio = {"mime_type": "audio/ogg; codecs=opus", **_media(wamid), "voice": voice}
    content = {"type": "audio", "audio": audio}
    return _whatsapp_inbound(
        phone_number_id, display_phone_number, wa_id, wamid, content, profile_name
    )


def whatsapp_location(
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str,
    wamid: str,
    *,
    latitude: float = 48.8566,
    longitude: float = 2.3522,
    name: str | None = None,
    address: str | None = None,
    profile_name: str = "Ada Lovelace",
) -> dict[str, Any]:
    location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if name is not None:
        location["name"] = name
    if address is not None:
        location["address"] = address
    content = {"type": "location", "location": location}
    return _whatsapp_inbound(
        phone_number_id, display_phone_number, wa_id, wamid, content, profile_name
    )


def whatsapp_sticker(
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str,
    wamid: str,
    *,
    profile_name: str = "Ada Lovelace",
) -> dict[str, Any]:
    sticker = {"mime_type": "image/webp", **_media(wamid), "animated": False}
    content = {"type": "sticker", "sticker": sticker}
    return _whatsapp_inbound(
        phone_number_id, display_phone_number, wa_id, wamid, content, profile_name
    )


def whatsapp_status(
    phone_number_id: str,
    wamid: str,
    status: str,
    recipient_id: str,
    errors: list[dict[str, Any]] | None = None,
    *,
    display_phone_number: str = BUSINESS_NUMBER,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """What became of a message the business sent: "sent", "delivered", "read" or "failed"
    (`errors` defaults to the re-engagement error then)."""
    entry: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(_now() if timestamp is None else timestamp),
        "recipient_id": recipient_id,
    }
    if status in ("sent", "delivered"):
        entry["conversation"] = {
            "id": f"conversation-{recipient_id}",
            "origin": {"type": "service"},
        }
        entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if status == "failed":
        entry["errors"] = errors if errors is not None else [RE_ENGAGEMENT_ERROR]
    value = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(phone_number_id, display_phone_number),
        "statuses": [entry],
    }
    return _whatsapp_envelope(value)


def _whatsapp_inbound(
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str,
    wamid: str,
    content: dict[str, Any],
    profile_name: str,
    timestamp: int | None = None,
) -> dict[str, Any]:
    message = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(_now() if timestamp is None else timestamp),
        **content,
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(phone_number_id, display_phone_number),
        "contacts": [{"profile": {"name": profile_name}, "wa_id": wa_id}],
        "messages": [message],
    }
    return _whatsapp_envelope(value)


def _metadata(phone_number_id: str, display_phone_number: str) -> dict[str, str]:
    return {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id}


def _media(wamid: str, media_id: str | None = None) -> dict[str, str]:
    digest = hashlib.sha256(wamid.encode()).hexdigest()
    return {"sha256": digest, "id": media_id or str(int(digest[:15], 16))}


def _whatsapp_envelope(value: dict[str, Any]) -> dict[str, Any]:
    change = {"value": value, "field": "messages"}
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [change]}]}


# -- Messenger ------------------------------------------------------------------------


def messenger_message(
    page_id: str, psid: str, text: str, mid: str, *, timestamp: int | None = None
) -> dict[str, Any]:
    """A text a person sent to the page, `psid` being their page-scoped id."""
    return _messenger(page_id, psid, {"message": {"mid": mid, "text": text}}, timestamp)


def messenger_attachment(
    page_id: str,
    psid: str,
    mid: str,
    kind: str = "image",
    *,
    url: str | None = None,
    text: str | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A message with an attachment ("image", "audio", "video" or "file") at `url`."""
    payload = {"url": url or f"https://cdn.example/{mid}.{kind}"}
    message: dict[str, Any] = {"mid": mid, "attachments": [{"type": kind, "payload": payload}]}
    if text is not None:
        message["text"] = text
    return _messenger(page_id, psid, {"message": message}, timestamp)


def messenger_referral(
    page_id: str, psid: str, ref: str, *, timestamp: int | None = None
) -> dict[str, Any]:
    """An m.me link with ?ref= opened by someone who already has a thread with the page."""
    referral = {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}
    return _messenger(page_id, psid, {"referral": referral}, timestamp)


def messenger_postback_referral(
    page_id: str,
    psid: str,
    ref: str,
    *,
    payload: str = "GET_STARTED",
    mid: str | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A tap on "Get Started" in a new thread opened by an m.me link with ?ref=."""
    postback: dict[str, Any] = {
        "title": "Get Started",
        "payload": payload,
        "referral": {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"},
    }
    if mid is not None:
        postback["mid"] = mid
    return _messenger(page_id, psid, {"postback": postback}, timestamp)


def _messenger(
    page_id: str, psid: str, event: dict[str, Any], timestamp: int | None
) -> dict[str, Any]:
    millis = _now() * 1000 if timestamp is None else timestamp
    messaging = {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": millis, **event}
    return {"object": "page", "entry": [{"id": page_id, "time": millis, "messaging": [messaging]}]}


# -- Meta's signature and subscription check ------------------------------------------


def meta_signature(app_secret: str, raw_body: bytes) -> str:
    """The X-Hub-Signature-256 value Meta sends with `raw_body`."""
    digest = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def meta_signed(app_secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of Meta's POST of `payload`, signed with `app_secret`."""
    raw = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        META_SIGNATURE_HEADER: meta_signature(app_secret, raw),
    }
    return raw, headers


def meta_verification(verify_token: str, challenge: str) -> dict[str, str]:
    """The query of Meta's GET when a webhook is subscribed; the answer echoes challenge."""
    return {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": challenge}
