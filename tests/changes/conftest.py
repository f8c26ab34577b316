import subprocess

import pytest
from django.template import Template

from tests.factories import EnvironmentFactory, ServiceFactory


@pytest.fixture
def busy_week(developer, release_manager, paris):
    """In Paris: "Faster render queue" scheduled Tuesday 2 March 2027 02:00-03:00 local, and a
    "Launch" freeze from Wednesday 13:00 to Friday 13:00 local."""
    from datetime import UTC, datetime

    from changes import services
    from tests.factories import approved_change

    change = approved_change(developer, paris, title="Faster render queue")
    services.change_schedule(
        actor=developer,
        change=change,
        start=datetime(2027, 3, 2, 1, tzinfo=UTC),
        end=datetime(2027, 3, 2, 2, tzinfo=UTC),
    )
    services.freeze_create(
        actor=release_manager,
        environment=paris,
        reason="Launch",
        starts_at=datetime(2027, 3, 3, 12, tzinfo=UTC),
        ends_at=datetime(2027, 3, 5, 12, tzinfo=UTC),
    )
    return change


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


@pytest.fixture
def github_server(repo):
    """A local GitHub API for acme/shop, serving a bare mirror of ``repo`` on a free port."""
    from tests.github_server import FakeGitHub

    with FakeGitHub(repo_path=repo, full_name="acme/shop") as server:
        yield server


def drawn_from(monkeypatch, template_name: str, name: str) -> list:
    """What the page draws from `template_name` (the `name` of each context); the rest comes
    from the cache."""
    drawn = []
    render = Template.render

    def counting(self, context):
        if self.origin and self.origin.template_name == template_name:
            drawn.append(context.get(name))
        return render(self, context)

    monkeypatch.setattr(Template, "render", counting)
    return drawn
