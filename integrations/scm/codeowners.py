"""CODEOWNERS as GitHub reads it: the owners of each changed file, the last matching line winning."""

import re
from collections.abc import Callable

from pathspec import GitIgnoreSpec

_CODEOWNERS_COMMENT = re.compile(r"(?:^|\s)#")
# A pattern or an owner: a run of non-spaces, where a backslash escapes the next character.
_CODEOWNERS_WORD = re.compile(r"(?:\\.|\S)+")


def code_owners(codeowners: str, paths: list[str]) -> list[str]:
    """The owners of `paths` by a CODEOWNERS file, read as GitHub reads it: for each path the last
    rule that matches it names its owners; a rule with no owner leaves the path unowned; a line
    GitHub cannot use is skipped."""
    rules = []
    for line in codeowners.splitlines():
        words = _CODEOWNERS_WORD.findall(_CODEOWNERS_COMMENT.split(line, 1)[0])
        matches = _codeowners_pattern(words[0]) if words else None
        if matches is not None:
            rules.append((matches, words[1:]))
    owners: list[str] = []
    for path in paths:
        matching = [names for matches, names in rules if matches(path)]
        for owner in matching[-1] if matching else []:
            if owner not in owners:
                owners.append(owner)
    return owners


def _codeowners_pattern(pattern: str) -> Callable[[str], bool] | None:
    """What one CODEOWNERS pattern matches: gitignore's rules, except where GitHub departs from
    them. GitHub documents that a `\\#` escape, a `!` negation and a `[ ]` range do not work in
    CODEOWNERS, and that `docs/*` owns the files in docs/ but not those in its subfolders. None
    for a line GitHub would not use, which then matches nothing."""
    if pattern.startswith(("!", "\\#")) or "[" in pattern:
        return None
    try:
        spec = GitIgnoreSpec.from_lines([pattern])
        if pattern.endswith("/*") and not pattern.endswith("**/*"):
            deeper = GitIgnoreSpec.from_lines([f"{pattern}/*"])
            return lambda path: spec.match_file(path) and not deeper.match_file(path)
    except ValueError:  # pathspec's GitIgnorePatternError: GitHub skips the line too
        return None
    return spec.match_file


def individual_logins(owners: list[str]) -> list[str]:
    """The GitHub logins named directly (`@login`), lowercased; teams and e-mails are not."""
    return [o[1:].lower() for o in owners if o.startswith("@") and "/" not in o]
