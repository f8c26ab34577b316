"""An approval policy's checklist and sign-offs are checked before they are kept."""

import pytest
from django.core.exceptions import ValidationError

from catalogue import defaults
from catalogue.models import ApprovalPolicy

pytestmark = pytest.mark.django_db


def policy(**fields) -> ApprovalPolicy:
    return ApprovalPolicy(name="Custom", **fields)


def test_the_default_policy_is_valid():
    policy().full_clean()
    assert len(defaults.checklist()) == 25


@pytest.mark.parametrize(
    ("checklist", "says"),
    [
        ("not a list", "is a list of items"),
        ([{"key": "a"}], "has a key and a text"),
        ([{"key": "a", "text": "A", "phases": ["someday"]}], "phases are among"),
        ([{"key": "a", "text": "A", "phases": ["pre"], "vouched_by": "janitor"}], "vouched_by is one of"),
        (
            [{"key": "a", "text": "A", "phases": ["pre"]}, {"key": "a", "text": "A", "phases": ["before"]}],
            "appears twice",
        ),
    ],
)
def test_a_bad_checklist_is_refused_with_the_reason(checklist, says):
    with pytest.raises(ValidationError, match=says):
        policy(checklist=checklist).full_clean()


def test_sign_offs_name_known_capacities():
    with pytest.raises(ValidationError, match="sign-off capacities"):
        policy(required_sign_offs=["security", "legal"]).full_clean()
