"""The one HMAC check of inbound webhooks: the right signature under the secret, nothing else."""

import hashlib
import hmac

import pytest

from integrations.signatures import signed_with

BODY = b'{"event": {"id": "01"}}'
GOOD = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()


def test_the_signature_of_the_body_under_the_secret_matches():
    assert signed_with(secret="s3cret", body=BODY, given=[f"sha256={GOOD}"], prefix="sha256=")


def test_one_good_signature_among_several_matches_while_a_secret_is_rotated():
    given = "v1=" + "0" * 64 + ", v1=" + GOOD
    assert signed_with(secret="s3cret", body=BODY, given=given.split(","), prefix="v1=")


@pytest.mark.parametrize(
    "given",
    [[""], ["sha256=" + "0" * 64], [GOOD], ["v1=" + GOOD], ["sha256=" + GOOD.upper()], ["sha256=\u00fc"], []],
)
def test_anything_else_does_not_match(given):
    assert not signed_with(secret="s3cret", body=BODY, given=given, prefix="sha256=")


def test_another_body_or_secret_does_not_match():
    assert not signed_with(secret="s3cret", body=BODY + b" ", given=[f"sha256={GOOD}"], prefix="sha256=")
    assert not signed_with(secret="other", body=BODY, given=[f"sha256={GOOD}"], prefix="sha256=")
