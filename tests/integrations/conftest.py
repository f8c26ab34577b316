"""A repository on disk and a GitHub server over it (the changes tests' own)."""

from tests.changes.conftest import github_server, repo  # noqa: F401 (fixtures)
