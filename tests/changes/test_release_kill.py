"""A release process killed for real (SIGKILL) between the merge and the tag: the retry finishes
it, with one merge and one tag on it."""

import os
import subprocess
import sys
import time

import pytest
from django.db import connections

from changes import releases
from changes.models import Release
from integrations.scm import LocalGit
from tests.changes.conftest import git
from tests.conftest import ROOT, database_url
from tests.factories import ApprovalPolicyFactory, EnvironmentFactory, change_create, deploying_at

pytestmark = pytest.mark.django_db(transaction=True)

# Cuts the release in another process whose tag step stalls once the merge is recorded.
RELEASE_THAT_STALLS = """
import os, pathlib, sys, time
import django
django.setup()
from changes import releases
from changes.models import ChangeRequest
from integrations.scm import LocalGit

class StallsAtTag(LocalGit):
    def tag(self, *args):
        pathlib.Path(os.environ["MARKER"]).write_text("merged")
        time.sleep(600)

releases.release_cut(change=ChangeRequest.objects.get(pk=int(sys.argv[1])), scm=StallsAtTag(sys.argv[2]))
"""


def test_a_release_killed_between_merge_and_tag_is_finished_by_the_retry(repo, developer, tmp_path):
    policy = ApprovalPolicyFactory(name="No signatures", signed_commits_required=False)
    change = change_create(developer, environment=EnvironmentFactory(approval_policy=policy))
    deploying_at(change, LocalGit(repo))
    marker = tmp_path / "merged"
    test_url = database_url(connections["default"].settings_dict)
    env = {**os.environ, "DATABASE_URL": test_url, "DATABASE_REPLICA_URL": test_url, "MARKER": str(marker)}
    process = subprocess.Popen(
        [sys.executable, "-c", RELEASE_THAT_STALLS, str(change.pk), str(repo)], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, "the release process ended before its tag step"
        assert time.monotonic() < deadline, "the release process never reached its tag step"
        time.sleep(0.1)
    process.kill()
    process.wait(timeout=20)

    stopped = Release.objects.get(change=change)
    assert stopped.merged_at is not None and stopped.tagged_at is None
    assert git(repo, "tag", "--list").split() == ["v1.2.0"]
    release = releases.release_cut(change=change, scm=LocalGit(repo))
    assert release.done and release.merge_commit == stopped.merge_commit
    assert len(git(repo, "rev-list", "--merges", "main").split()) == 1
    assert git(repo, "rev-parse", "v1.3.0^{commit}") == stopped.merge_commit
