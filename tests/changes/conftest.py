import subprocess

import pytest

from tests.factories import EnvironmentFactory, ServiceFactory


@pytest.fixture
def catalogue():
    """One environment and one service, for tests that file changes with the factory defaults."""
    EnvironmentFactory()
    ServiceFactory()


def git(path, *args) -> str:
    author = ["-c", "user.name=Dana Dev", "-c", "user.email=dana@example.com"]
    return subprocess.run(
        ["git", "-C", str(path), *author, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(path, name: str, content: str, message: str) -> None:
    (path / name).write_text(content)
    git(path, "add", name)
    git(path, "commit", "--quiet", "-m", message)


@pytest.fixture
def repo(tmp_path):
    """main released as v1.2.0; staging two commits ahead."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch=main")
    commit(path, "app.txt", "version one\n", "First release")
    git(path, "tag", "-a", "v1.2.0", "-m", "v1.2.0")
    git(path, "checkout", "--quiet", "-b", "staging")
    commit(path, "render.txt", "new queue\n", "Move rendering to the new queue")
    commit(path, "crop.txt", "safe area\n", "Crop thumbnails to the safe area")
    git(path, "checkout", "--quiet", "main")
    return path
