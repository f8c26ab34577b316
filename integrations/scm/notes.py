"""Words the portal writes about a repository: a check list for a person, release notes within
GitHub's limit for a release's body."""

from collections.abc import Iterable

from integrations.scm.base import NOTES_LIMIT, Check, check_verdict


def checks_in_words(checks: Iterable[Check], required: list[str]) -> str:
    """What keeps the checks from passing, in words ("failing: lint; still running: e2e; required,
    not reported: build"), or "" when nothing does: the deploy gate and the merge say it alike."""
    failing, running, missing = check_verdict(checks, required)
    return "; ".join(
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("failing", failing),
            ("still running", running),
            ("required, not reported", missing),
        )
        if names
    )


def commits_in_notes(lines: list[str], more: int) -> str:
    """The commits of a release's notes, newest first, and how many more there are."""
    listed = "\n".join(lines) or "- No changes since the previous release."
    return listed + (f"\n- … and {more} more commit{'s' if more != 1 else ''}" if more > 0 else "")


def notes_within_limit(text: str) -> str:
    """The notes, cut to stay under GitHub's limit for a release's body."""
    if len(text) < NOTES_LIMIT:
        return text
    cut = f"\n\n… (cut here: the notes were longer than GitHub's {NOTES_LIMIT:,} characters)"
    return text[: NOTES_LIMIT - 1 - len(cut)] + cut


def notes_line(subject: str, sha: str, author: str) -> str:
    subject = subject if len(subject) <= 200 else subject[:199] + "…"
    return f"- {subject} ({sha[:7]}, {author})"
