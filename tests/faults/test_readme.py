"""README's fault matrix is rendered from the outcomes the fault tests assert (tests/faults/table.py):
it is regenerated, never edited by hand."""

import pytest

from tests.faults import table

pytestmark = pytest.mark.faults


def test_the_readme_shows_the_fault_matrix_the_tests_produce():
    shown = table.readme_table(table.README.read_text())
    assert shown is not None, f"README.md lost its markers {table.BEGIN} ... {table.END}"
    assert shown == table.render(table.expected()), (
        "README's fault matrix differs from the tests': run the fault tests, then "
        "`python -m tests.faults.table --write`."
    )


def test_the_worker_is_killed_in_every_stage_of_the_engine():
    killed_in = [c.stage for c in table.CASES if c.fault == table.KILLED]
    assert killed_in == list(table.STAGES)
