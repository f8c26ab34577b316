import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from changes.models import ChangeRequest, StandardChangeTemplate
from deployments.models import Environment
from portal.mfa import totp_code
from portal.models import User
from portal.selectors import audit_chain_verify


@pytest.mark.django_db
def test_demo_commands_refuse_without_the_demo_settings(settings):
    settings.DEMO = False
    with pytest.raises(CommandError, match="demo settings"):
        call_command("demo_seed")
    with pytest.raises(CommandError, match="demo settings"):
        call_command("demo_otp", "alex")


@pytest.mark.django_db
def test_demo_seed_makes_a_team_for_the_whole_quorum_and_changes_in_several_states(settings, capsys):
    settings.DEMO = True
    call_command("demo_seed")
    out = capsys.readouterr().out
    assert out.count("otpauth://totp/Greenlight%3A") == 12
    roles = dict(User.objects.values_list("username", "role"))
    assert roles["riley"] == "release_manager" and roles["audrey"] == "auditor" and roles["admin"] == "admin"
    assert User.objects.get(username="polly").capacity_names() == {"policy_admin"}
    statuses = sorted(ChangeRequest.objects.values_list("status", flat=True))
    assert statuses == ["approved", "approved", "changes_requested", "draft", "submitted"]
    production = Environment.objects.get(name="production")
    assert [(w.weekdays, w.start_time.hour, w.end_time.hour) for w in production.windows.all()] == [
        ([1, 2, 3], 2, 5)
    ]
    assert list(StandardChangeTemplate.objects.values_list("name", flat=True)) == ["Renew a TLS certificate"]
    assert audit_chain_verify().ok

    call_command("demo_seed")  # again: nothing doubles
    assert User.objects.count() == 12 and ChangeRequest.objects.count() == 5


@pytest.mark.django_db
def test_demo_otp_prints_a_code_the_portal_accepts(settings, capsys, client):
    settings.DEMO = True
    call_command("demo_seed")
    capsys.readouterr()
    call_command("demo_otp", "riley")
    code = capsys.readouterr().out.strip()
    assert len(code) == 6 and code.isdigit()
    client.post("/login/", {"username": "riley", "password": "greenlight-demo"})
    response = client.post("/login/otp/", {"otp": code, "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    device = User.objects.get(username="riley").totpdevice_set.get()
    assert totp_code(device) != code  # used: the next one differs


@pytest.mark.django_db
def test_demo_seed_makes_a_signed_repository_ready_to_release(settings, tmp_path, capsys):
    from changes import releases
    from changes.scm import Identity, LocalGit

    settings.DEMO = True
    settings.GIT_REPOSITORY_PATH = str(tmp_path / "demo-repo")
    settings.GIT_SIGNING_KEY = str(tmp_path / "demo-signing-key")
    settings.GIT_ALLOWED_SIGNERS = str(tmp_path / "demo-allowed-signers")
    call_command("demo_seed")
    assert "Made the demo repository" in capsys.readouterr().out
    identity = Identity(signing_key=settings.GIT_SIGNING_KEY, signing_format="ssh")
    repo = LocalGit(
        settings.GIT_REPOSITORY_PATH, identity=identity, allowed_signers=settings.GIT_ALLOWED_SIGNERS
    )
    assert repo.last_tag("main") == "v1.0.0" and repo.unsigned_commits("staging", "main") == []
    change = ChangeRequest.objects.get(title="Fix thumbnail cropping")  # scheduled now, a patch
    assert change.pull.owners == ["@alex-owner"] and change.pull.unsigned == []  # read from the repository
    change.status = "deploying"  # the deployment engine's part
    change.save(update_fields=["status"])
    release = releases.release_cut(change=change, scm=repo)
    assert release.version == "v1.0.1" and release.done
    assert "Export storyboards to PDF" in release.notes
    assert repo.unsigned_commits("main", "v1.0.0") == []  # the portal's merge is signed too
    call_command("demo_seed")  # again: the repository is left as it is
    assert repo.tags() == {"v1.0.0", "v1.0.1"}


@pytest.fixture
def seeded(settings, tmp_path):
    """The demo seeded with its repository."""
    settings.DEMO = True
    settings.GIT_REPOSITORY_PATH = str(tmp_path / "demo-repo")
    settings.GIT_SIGNING_KEY = str(tmp_path / "demo-signing-key")
    settings.GIT_ALLOWED_SIGNERS = str(tmp_path / "demo-allowed-signers")
    call_command("demo_seed")
    return settings


@pytest.mark.django_db
def test_demo_seed_readies_two_changes_the_first_in_its_slot_now(seeded):
    from changes.calendar import deploy_timing
    from deployments.services import deploy_refusals
    from portal import clock

    first = ChangeRequest.objects.get(title="Fix thumbnail cropping")
    second = ChangeRequest.objects.get(title="Sharper render previews")
    assert (first.status, second.status) == ("scheduled", "approved")
    assert deploy_timing(first, now=clock.now())[0]  # the demo's clock is at production's window
    # All that stands in the way is the load balancer the simulated production configures.
    assert deploy_refusals(first) == [
        "Production has no deploy settings: a policy admin sets its load balancer first."
    ]
    assert not any("Staging soak" in r for r in deploy_refusals(second))
    # The second waits only for a slot (the first holds this one): "Take it" on its page books the next.
    assert [i.key for i in second.checklist.all() if i.gates_deploy and not i.done] == ["window_scheduled"]


@pytest.mark.django_db
def test_the_simulated_developers_keep_staging_ahead_of_a_release(seeded):
    from changes import releases, scm
    from deployments.management.commands.demo_production import Command
    from portal.management.commands.demo_seed import signed_git

    first = ChangeRequest.objects.get(title="Fix thumbnail cropping")
    second = ChangeRequest.objects.get(title="Sharper render previews")
    path, key = seeded.GIT_REPOSITORY_PATH, seeded.GIT_SIGNING_KEY
    Command()._keep_staging_ahead()  # staging is ahead: nothing to do
    assert signed_git(path, key, "rev-list", "--count", "main..staging") == "3"
    first.status = "deploying"  # the deployment engine's part
    first.save(update_fields=["status"])
    releases.release_cut(change=first, scm=scm.repository())  # everything staging had is released
    assert signed_git(path, key, "rev-list", "main..staging") == ""

    Command()._keep_staging_ahead()
    head = signed_git(path, key, "rev-parse", "staging")
    assert signed_git(path, key, "rev-list", "--count", "main..staging") == "1"
    second.refresh_from_db()
    assert second.pull.head_sha == head and second.pull.unsigned == []  # a developer's signed commit
    assert second.checks.get(name="tests").head_sha == head  # CI checked it
    assert signed_git(path, key, "rev-parse", "--abbrev-ref", "HEAD") == "main"  # the checkout untouched
