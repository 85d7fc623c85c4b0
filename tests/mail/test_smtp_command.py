"""`porch smtp`: an SMTP ingress in its own process, handing replies to a running relay
through its signed /v1/inbound/raw; when the relay is away, senders are told to retry."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import pytest

from tests.fakes.dns_server import FakeDns
from tests.mail.conftest import issue_reply_tag
from tests.support import RunningRelay, free_port, porch_command, porch_env, start_thread

SECRET = "s" * 40
REPLY_DOMAIN = "reply.example"


@asynccontextmanager
async def porch_smtp(relay_url: str, tmp_path: object) -> AsyncIterator[int]:
    port = free_port()
    env = porch_env(
        tmp_path,
        inbound_secret=SECRET,
        reply_domain=REPLY_DOMAIN,  # type: ignore[arg-type]
        smtp_port=str(port),
        public_url=relay_url,
    )
    process = await asyncio.create_subprocess_exec(
        *porch_command(),
        "smtp",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode()
        assert line.startswith("Porch SMTP ingress on 127.0.0.1:"), line
        yield port
    finally:
        process.terminate()
        await process.wait()


def reply(tag: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "owner@alpha.example"
    message["To"] = f"r+{tag}@{REPLY_DOMAIN}"
    message["Subject"] = "Re: your question"
    message["Message-ID"] = make_msgid(domain="alpha.example")
    message.set_content(text)
    return message


async def test_replies_reach_the_relay(
    make_relay: Callable[..., RunningRelay], tmp_path: object
) -> None:
    relay = make_relay(inbound_secret=SECRET, reply_domain=REPLY_DOMAIN)
    async with relay.client() as client:
        started = await start_thread(client, "Open tomorrow?")
    tag = issue_reply_tag(relay, started["thread"]["id"], "owner@alpha.example")
    async with porch_smtp(relay.url, tmp_path) as port:
        await aiosmtplib.send(reply(tag, "Yes, from 7."), hostname="127.0.0.1", port=port)
    with relay.db() as db:
        bodies = [r[0] for r in db.execute("SELECT body FROM messages WHERE via = 'email'")]
    assert bodies == ["Yes, from 7."]


async def test_relay_away_means_try_again_later(tmp_path: object) -> None:
    async with porch_smtp(f"http://127.0.0.1:{free_port()}", tmp_path) as port:
        with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
            await aiosmtplib.send(reply("a" * 26, "hello"), hostname="127.0.0.1", port=port)
    assert deferred.value.code == 451


def test_needs_its_settings(tmp_path: object) -> None:
    env = porch_env(tmp_path)  # type: ignore[arg-type]
    result = subprocess.run(
        [*porch_command(), "smtp"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and "PORCH_SMTP_PORT" in result.stderr


def test_mail_inspect_prints_json_and_refuses_non_mail(tmp_path: object) -> None:
    import json
    from pathlib import Path

    corpus = Path(__file__).parent / "corpus"
    sample = sorted(corpus.glob("*.eml"))[0]
    env = porch_env(tmp_path)  # type: ignore[arg-type]
    result = subprocess.run(
        [*porch_command(), "mail", "inspect", str(sample)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    checks = found.pop("authentication")  # who sent it: tests/mail/test_authentication.py
    assert found == json.loads(sample.with_suffix(".json").read_text())
    assert checks["decision"]["action"] == "accept" and checks["dmarc"]["result"] == "none"
    garbage = Path(str(tmp_path)) / "garbage.eml"
    garbage.write_bytes(b"")
    for path in (garbage, Path(str(tmp_path)) / "missing.eml"):
        result = subprocess.run(
            [*porch_command(), "mail", "inspect", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2 and str(path) in result.stderr
        assert "Traceback" not in result.stderr


def test_mail_inspect_says_why_a_sender_would_be_held(tmp_path: Path) -> None:
    import json

    sample = Path(__file__).parent / "corpus" / "apple_mail_macos_en.eml"  # unsigned
    with FakeDns() as dns:
        dns.txt("_dmarc.dupont.example", "v=DMARC1; p=reject")
        env = {**porch_env(tmp_path), "PORCH_DNS_SERVERS": dns.address}
        result = subprocess.run(
            [*porch_command(), "mail", "inspect", str(sample)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        unchecked = subprocess.run(
            [*porch_command(), "mail", "inspect", "--no-checks", str(sample)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 0, result.stderr
    checks = json.loads(result.stdout)["authentication"]
    assert checks["dmarc"]["policy"] == "reject" and checks["dkim"] == []
    decision = checks["decision"]
    assert (decision["action"], decision["reason"]) == ("hold", "dmarc_fail")
    assert "dupont.example" in decision["detail"]
    assert "authentication" not in json.loads(unchecked.stdout)
