"""Signed tokens: rotation, tampering, purposes kept apart."""

from __future__ import annotations

import pytest

from relay.errors import InvalidToken
from relay.tokens import OwnerClaim, Tokens, VisitorClaim, new_secret_key

NEW, OLD = new_secret_key(), new_secret_key()


def test_round_trip() -> None:
    tokens = Tokens((NEW,))
    assert tokens.read(tokens.visitor_token("v_1", "alpha")) == VisitorClaim("v_1", "alpha")
    assert tokens.read(tokens.owner_token("alpha")) == OwnerClaim("alpha")


def test_older_key_still_verifies_and_newest_signs() -> None:
    issued_before_rotation = Tokens((OLD,)).visitor_token("v_1", "alpha")
    rotated = Tokens((NEW, OLD))
    assert rotated.read_visitor(issued_before_rotation) == VisitorClaim("v_1", "alpha")
    fresh = rotated.visitor_token("v_2", "alpha")
    assert Tokens((NEW,)).read_visitor(fresh).visitor == "v_2"  # signed with the newest


def test_removed_key_no_longer_verifies() -> None:
    issued = Tokens((OLD,)).visitor_token("v_1", "alpha")
    with pytest.raises(InvalidToken):
        Tokens((NEW,)).read(issued)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],  # truncated signature
        lambda t: t[: t.index(".")],  # no signature at all
        lambda t: "x" + t[1:],  # payload altered
        lambda t: t.replace(".", ".A", 1),  # signature altered
        lambda t: "",
        lambda t: "a.b.c.d",
    ],
)
def test_tampered_tokens_are_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    tokens = Tokens((NEW,))
    with pytest.raises(InvalidToken):
        tokens.read(mangle(tokens.visitor_token("v_1", "alpha")))


def test_foreign_key_is_refused() -> None:
    with pytest.raises(InvalidToken):
        Tokens((NEW,)).read(Tokens((new_secret_key(),)).visitor_token("v_1", "alpha"))


def test_purposes_do_not_mix() -> None:
    tokens = Tokens((NEW,))
    with pytest.raises(InvalidToken):
        tokens.read_visitor(tokens.owner_token("alpha"))
    with pytest.raises(InvalidToken):
        tokens.read_owner(tokens.visitor_token("v_1", "alpha"))
