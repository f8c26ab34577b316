"""Release versions (vMAJOR.MINOR.PATCH, per "Release Versioning"): the next one from the last tag
and the change's bump, refused when it exists already, when the last tag is not a semantic
version, or when it would go backwards."""

import re
from dataclasses import dataclass
from functools import total_ordering

SEMVER = re.compile(r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


class VersionRefused(ValueError):
    """A version the release may not take; the message says why and what to do."""


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, tag: str) -> "Version":
        match = SEMVER.fullmatch(tag.strip())
        if match is None:
            raise VersionRefused(f"{tag!r} is not a semantic version like v1.4.2.")
        return cls(*(int(part) for part in match.groups()))

    def bump(self, kind: str) -> "Version":
        if kind == "major":
            return Version(self.major + 1, 0, 0)
        if kind == "minor":
            return Version(self.major, self.minor + 1, 0)
        if kind == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise VersionRefused(f"{kind!r} is not a version bump; use major, minor or patch.")

    def __lt__(self, other: "Version") -> bool:
        return (self.major, self.minor, self.patch) < (other.major, other.minor, other.patch)

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


FIRST = Version(0, 0, 0)


def next_version(last_tag: str | None, existing_tags: set[str], bump: str) -> Version:
    """The version after `last_tag` (the newest tag on the target branch; none: the first release)."""
    if last_tag is not None and SEMVER.fullmatch(last_tag) is None:
        raise VersionRefused(
            f"The last tag on the branch, {last_tag!r}, is not a semantic version like v1.4.2: "
            "tag the running release as one before releasing again."
        )
    candidate = (Version.parse(last_tag) if last_tag else FIRST).bump(bump)
    if str(candidate) in existing_tags:
        raise VersionRefused(f"{candidate} exists already: it would be tagged twice.")
    newer = sorted(
        Version.parse(t) for t in existing_tags if SEMVER.fullmatch(t) and Version.parse(t) > candidate
    )
    if newer:
        raise VersionRefused(
            f"{candidate} would go backwards: {newer[-1]} is tagged already. "
            "Release from the branch that carries it."
        )
    return candidate
