"""Branch and tag names as git allows them: checked before any command or API call sees them."""

import re

from integrations.scm.base import ScmError

_BAD_REF = re.compile(r"^[-/.]|\.\.|//|@\{|/\.|[\x00-\x20~^:?*\[\\\x7f]|(\.lock|[/.])$")


def ref_name_problem(value: str) -> str:
    """Why `value` is not a branch or tag name git accepts (git check-ref-format), or ""."""
    if not value or len(value) > 255 or value == "@" or _BAD_REF.search(value):
        return f"{value!r} is not a branch or tag name."
    return ""


def validate_git_ref(value: str) -> None:
    """A model and form validator: an empty value is left to `blank`."""
    from django.core.exceptions import ValidationError

    if value and ref_name_problem(value):
        raise ValidationError(ref_name_problem(value))


def checked_ref(name: str) -> str:
    """A branch name about to reach git or GitHub, refused unless git would accept it: a name
    starting with a dash would be read as an option, and a `..` walks somewhere else."""
    problem = ref_name_problem(name)
    if problem:
        raise ScmError(problem, kind="invalid")
    return name


def short_ref(ref: str) -> str:
    """A branch or tag as GitHub names a run's branch: refs/heads/main is main."""
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
