"""The data migration of issue 19: full tokens become write ones, authenticator keys are sealed
and backup codes digested, and each still works afterwards."""

import importlib

import pytest
from django.apps import apps
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import otp_keys, services
from portal.models import ApiToken, SealedTOTPDevice
from tests.factories import DEFAULT_PASSWORD, otp_code

migration = importlib.import_module("portal.migrations.0008_sign_in_lockout_token_scopes")


@pytest.mark.django_db
def test_migration_full_tokens_become_write_tokens(developer):
    token, _secret = services.api_token_create(actor=developer, name="old", expires_in_days=7)
    ApiToken.objects.filter(pk=token.pk).update(scope="full")

    migration.full_becomes_write(apps, None)

    token.refresh_from_db()
    assert token.scope == ApiToken.Scope.WRITE


@pytest.mark.django_db
def test_migration_seals_keys_and_digests_codes_which_still_work(client, developer):
    plain = TOTPDevice.objects.create(user=developer, name="phone", confirmed=True)  # stored in the clear
    backup = StaticDevice.objects.create(user=developer, name="Backup codes", confirmed=True)
    StaticToken.objects.create(device=backup, token="abcd2345")
    hex_key = plain.key

    migration.seal_second_factors(apps, None)
    migration.seal_second_factors(apps, None)  # run twice: nothing sealed twice

    plain.refresh_from_db()
    assert otp_keys.is_sealed(plain.key) and hex_key not in plain.key
    assert SealedTOTPDevice.objects.get(pk=plain.pk).bin_key.hex() == hex_key
    stored = StaticToken.objects.get(device=backup).token
    assert stored == otp_keys.backup_digest(backup.pk, "abcd2345")
    client.post("/login/", {"username": developer.username, "password": DEFAULT_PASSWORD})
    assert client.post("/login/otp/", {"otp": "abcd2345", "next": "/"}).status_code == 302
    client.post("/logout/")
    client.post("/login/", {"username": developer.username, "password": DEFAULT_PASSWORD})
    assert client.post("/login/otp/", {"otp": otp_code(plain), "next": "/"}).status_code == 302
