import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalogue.models import Environment
from changes.models import ChangeRequest, StandardChangeTemplate
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
    from integrations.scm import Identity, LocalGit

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
    assert repo.last_tag("main") == "v1.0.0" and repo.unsigned_commits("thumbnail-crop", "main") == []
    change = ChangeRequest.objects.get(title="Fix thumbnail cropping")  # scheduled now, a patch
    assert change.pull.owners == ["@alex-owner"] and change.pull.unsigned == []  # read from the repository
    assert change.approved_commit == repo.head("thumbnail-crop")
    change.status = "deploying"  # the deployment engine's part
    change.save(update_fields=["status"])
    release = releases.release_cut(change=change, scm=repo)
    assert release.version == "v1.0.1" and release.done
    # Its chain of custody holds, link by link, in the demo's repository.
    from changes import custody

    links = custody.chain(change, repository=repo)
    assert [(link["link"], link["verdict"]) for link in links[:4]] == [
        ("Approved commit", "matches"),
        ("Staging soak", "matches"),
        ("Merge", "matches"),
        ("Tag", "matches"),
    ]
    # Its own work only: not the draft's nor the waiting change's.
    assert "Crop thumbnails to the safe area" in release.notes
    assert "Export storyboards to PDF" not in release.notes
    assert "Move rendering to the new queue" not in release.notes
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
def test_the_second_ready_change_still_releases_its_own_commit_after_the_first(seeded):
    from changes import releases
    from integrations import scm

    first = ChangeRequest.objects.get(title="Fix thumbnail cropping")
    second = ChangeRequest.objects.get(title="Sharper render previews")
    for change in (first, second):
        change.status = "deploying"  # the deployment engine's part
        change.save(update_fields=["status"])
        release = releases.release_cut(change=change, scm=scm.repository())
        assert release.done
    second.refresh_from_db()
    assert release.head_commit == second.approved_commit == second.pull.head_sha
    assert "Sharpen the render previews" in release.notes and "Crop thumbnails" not in release.notes
