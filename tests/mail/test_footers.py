"""relay.channels.email.footers: app footers and disclaimers under an owner's text, and the
owner's own lines that only look like them."""

from __future__ import annotations

import pytest

from relay.channels.email.footers import is_footer, strip_trailing


@pytest.mark.parametrize(
    "line",
    [
        "Sent from my iPhone",
        "Sent from my HTC M8 Android phone.  Please excuse typos",
        "(Sent from mobile device)",
        "Sent with Airmail",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Sent from [Mail](https://go.microsoft.com/fwlink/?LinkId=550986) for Windows",
        "Envoyé de mon iPhone",
        "Von meinem iPhone gesendet",
        "Diese Nachricht wurde von meinem Android-Mobiltelefon mit K-9 Mail gesendet.",
        "Enviado desde mi iPhone",
        "Inviato da iPhone",
        "Inviato dal mio smartphone Samsung Galaxy.",
        "Ottieni Outlook per Android",
        "Verstuurd vanaf mijn iPhone",
        "Verzonden met BlackBerry Work",
        "Enviado do meu iPhone",
        "Obter o Outlook para iOS",
        "Skickat från min iPhone",
        "Sendt fra min iPad",
        "Wysłane z mojego iPhone'a",
        "Отправлено с iPhone",
        "從我的 iPhone 傳送",
        "iPhoneから送信",
        "Virus-free.www.avast.com",
        "\u1427",  # Streak's tracking mark
    ],
)
def test_footers(line: str) -> None:
    assert is_footer(line)
    assert strip_trailing(["Yes, Tuesdays.", "", line]) == ["Yes, Tuesdays."]


@pytest.mark.parametrize(
    "line",
    [
        "Sent via DHL.",
        "Sent from my iPhone? No, from my laptop.",
        "Inviato da Giulia",
        "Enviado de Lisboa",
        "From: the bakery",
        "Verzonden: morgen",
    ],
)
def test_sentences_that_only_start_like_footers(line: str) -> None:
    assert not is_footer(line)
    assert strip_trailing(["Yes.", "", line]) == ["Yes.", "", line]


DISCLAIMER_EN = [
    "This email and any attachments are confidential and intended solely for the",
    "addressee. If you received it in error, please notify the sender and delete it.",
]
DISCLAIMER_FR = [
    "Ce message et toutes les pièces jointes sont confidentiels et établis à",
    "l'intention exclusive de ses destinataires. Si vous avez reçu ce message par",
    "erreur, merci de le détruire.",
]


def test_disclaimers_that_end_the_text_go() -> None:
    lines = ["Yes, Tuesdays.", "", *DISCLAIMER_EN, "", *DISCLAIMER_FR, "", "Sent from my iPad"]
    assert strip_trailing(lines) == ["Yes, Tuesdays."]
    titled = ["Yes.", "", "CONFIDENTIALITY NOTICE:", "", *DISCLAIMER_EN]
    assert strip_trailing(titled) == ["Yes."]


@pytest.mark.parametrize(
    "lines",
    [
        DISCLAIMER_EN,  # the first paragraph is always the owner's
        ["Hi,", "", *DISCLAIMER_EN, "", "Pierre"],  # owner text follows: not a server's
        ["Hi,", "", "This message is confidential: the door code is 4821."],  # no addressee
        ["Hi,", "", "This message is confidential.", "", "Please delete the photo."],
        ["Hi,", "", "The recipe is confidential, please delete it after use."],  # no opening
    ],
)
def test_owner_text_about_confidentiality_stays(lines: list[str]) -> None:
    assert strip_trailing(lines) == lines
