"""The next release version: from the last tag and the change's bump, refused with a reason when
it exists, when the last tag is not semantic, or when it goes backwards."""

import pytest

from integrations.scm.versions import Version, VersionRefused, next_version


@pytest.mark.parametrize(
    ("last", "bump", "expected"),
    [
        ("v1.4.2", "patch", "v1.4.3"),
        ("v1.4.2", "minor", "v1.5.0"),
        ("v1.4.2", "major", "v2.0.0"),
        (None, "minor", "v0.1.0"),
        ("v0.9.9", "minor", "v0.10.0"),
    ],
)
def test_next_version_follows_the_bump(last, bump, expected):
    assert str(next_version(last, {last} if last else set(), bump)) == expected


def test_an_existing_tag_is_refused():
    with pytest.raises(VersionRefused, match="v1.5.0 exists already: it would be tagged twice"):
        next_version("v1.4.2", {"v1.4.2", "v1.5.0"}, "minor")


def test_a_version_that_goes_backwards_is_refused():
    with pytest.raises(VersionRefused, match="v1.5.0 would go backwards: v2.0.0 is tagged already"):
        next_version("v1.4.2", {"v1.4.2", "v2.0.0"}, "minor")


@pytest.mark.parametrize("tag", ["release-2024", "1.4.2", "v1.4", "v01.2.3", "v1.2.3-rc1"])
def test_a_last_tag_that_is_not_semantic_is_refused(tag):
    with pytest.raises(
        VersionRefused, match=f"The last tag on the branch, '{tag}', is not a semantic version"
    ):
        next_version(tag, {tag}, "patch")


def test_an_unknown_bump_is_refused():
    with pytest.raises(VersionRefused, match="'huge' is not a version bump"):
        next_version("v1.0.0", {"v1.0.0"}, "huge")


def test_versions_order_by_number_not_by_text():
    assert Version.parse("v1.10.0") > Version.parse("v1.9.9")
