"""A person's capacities and authenticator are read from the cache, and a write is seen at once."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import access_cache, generations, mfa, services
from portal.models import User, UserCapacity
from portal.roles import Capacity, Right
from tests.factories import UserFactory, totp_device


def fresh(user) -> User:
    """The person as the next request loads them: a new object, nothing worked out yet."""
    return User.objects.get(pk=user.pk)


@pytest.mark.django_db
def test_a_second_request_reads_capacities_and_devices_without_a_query(developer):
    access_cache.standing(fresh(developer))
    person = fresh(developer)
    with CaptureQueriesContext(connection) as queries:
        assert person.capacity_names() == frozenset()
        assert mfa.has_device(person) is False
    assert len(queries) == 0


@pytest.mark.django_db
def test_a_grant_and_a_revocation_count_on_the_next_request(policy_admin, release_manager):
    assert not fresh(release_manager).capacity_names()
    services.user_capacity_grant(actor=policy_admin, user=release_manager, capacity=Capacity.SECURITY)
    assert fresh(release_manager).capacity_names() == {Capacity.SECURITY}
    services.user_capacity_revoke(actor=policy_admin, user=release_manager, capacity=Capacity.SECURITY)
    assert fresh(release_manager).capacity_names() == frozenset()


@pytest.mark.django_db
def test_a_policy_administrator_loses_the_right_as_soon_as_the_capacity_goes(policy_admin):
    other = UserFactory(role="release_manager", capacities=[Capacity.POLICY_ADMIN])
    assert fresh(other).has_perm(Right.POLICY_MANAGE)
    services.user_capacity_revoke(actor=policy_admin, user=other, capacity=Capacity.POLICY_ADMIN)
    assert not fresh(other).has_perm(Right.POLICY_MANAGE)


@pytest.mark.django_db
def test_an_enrolled_authenticator_is_seen_on_the_next_request(developer):
    assert mfa.has_device(fresh(developer)) is False
    device = totp_device(developer)
    assert mfa.has_device(fresh(developer)) is True
    device.delete()
    assert mfa.has_device(fresh(developer)) is False


@pytest.mark.django_db
def test_an_entry_filled_from_rows_read_before_a_write_is_never_read_after_it(developer):
    """A request that read the rows before a grant committed fills the cache under the old
    generation; the grant's bump leaves that entry unread."""
    person = fresh(developer)
    access_cache.standing(person)
    [generation] = generations.current(access_cache.generation_name(person.pk))
    stale = access_cache._read(person)  # the slow request reads the rows...
    UserCapacity.objects.create(user=developer, capacity=Capacity.PRODUCT, granted_at=timezone.now())
    cache.set(f"access:{person.pk}:{generation}", stale)  # ...and fills after the write
    assert fresh(developer).capacity_names() == {Capacity.PRODUCT}


@pytest.mark.django_db
def test_the_write_bumps_the_generation_again_when_it_commits(developer, django_capture_on_commit_callbacks):
    name = access_cache.generation_name(developer.pk)
    access_cache.standing(developer)
    [start] = generations.current(name)
    with django_capture_on_commit_callbacks(execute=True):
        totp_device(developer)
    assert generations.current(name) == [start + 2]
