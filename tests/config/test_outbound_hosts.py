"""OUTBOUND_ALLOWED_HOSTS: host names, domains, addresses and CIDR ranges; anything else stops
start-up naming the variable."""

import pytest

from config import env


def test_names_domains_addresses_and_ranges_are_taken(monkeypatch):
    monkeypatch.setenv(
        "OUTBOUND_ALLOWED_HOSTS", "Pipeline.Internal, .corp.example,10.0.0.0/16,fd00:1::/64,10.1.2.3"
    )
    assert env.hosts("OUTBOUND_ALLOWED_HOSTS", []) == [
        "pipeline.internal",
        ".corp.example",
        "10.0.0.0/16",
        "fd00:1::/64",
        "10.1.2.3",
    ]


def test_unset_it_is_the_default(monkeypatch):
    monkeypatch.delenv("OUTBOUND_ALLOWED_HOSTS", raising=False)
    assert env.hosts("OUTBOUND_ALLOWED_HOSTS", ["127.0.0.0/8"]) == ["127.0.0.0/8"]


@pytest.mark.parametrize("value", ["http://pipeline.internal/", "10.0.0.0/33", "under_score.example", "a b"])
def test_anything_else_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("OUTBOUND_ALLOWED_HOSTS", value)
    with pytest.raises(env.ConfigurationError, match="OUTBOUND_ALLOWED_HOSTS: .* is neither a host name"):
        env.hosts("OUTBOUND_ALLOWED_HOSTS", [])
