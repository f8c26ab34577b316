"""The local git backend against real repositories in a temporary folder: merge, annotated tag,
notes from the log, signature checks (SSH keys made for the test), conflicts and reverts."""

import subprocess

import pytest

from integrations.scm import Identity, LocalGit, ScmError
from tests.changes.conftest import commit, git


@pytest.fixture
def ssh_signing(tmp_path):
    """An SSH key and the allowed-signers file that trusts it."""
    key = tmp_path / "signing_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"dana@example.com,greenlight@localhost {(tmp_path / 'signing_key.pub').read_text()}")
    return key, signers


def test_merge_tag_and_notes_make_a_release(repo):
    scm = LocalGit(repo)
    assert scm.last_tag("main") == "v1.2.0" and scm.tags() == {"v1.2.0"}
    staging_head = scm.head("staging")
    merge = scm.merge("staging", "main", "Release v1.3.0 (CHG-000001)")
    assert git(repo, "rev-list", "--parents", "-n", "1", merge).split()[1:] == [
        git(repo, "rev-parse", "v1.2.0^{commit}"),
        staging_head,
    ]
    assert scm.is_merged(staging_head, "main")
    notes = scm.release_notes("v1.2.0", merge)
    assert notes.splitlines()[0].startswith("- Crop thumbnails to the safe area (")
    assert "Move rendering to the new queue" in notes and "First release" not in notes
    scm.tag("v1.3.0", merge, "v1.3.0\n\n" + notes)
    assert git(repo, "cat-file", "-t", "v1.3.0") == "tag"  # annotated
    assert scm.tag_commit("v1.3.0") == merge and scm.last_tag("main") == "v1.3.0"


def test_a_conflict_leaves_the_target_as_it_was(repo):
    commit(repo, "render.txt", "old queue, patched on main\n", "Hotfix on main")
    before = git(repo, "rev-parse", "main")
    with pytest.raises(
        ScmError, match="staging does not merge cleanly into main: conflicts in render.txt"
    ) as refused:
        LocalGit(repo).merge("staging", "main", "Release")
    assert refused.value.kind == "conflict"
    assert git(repo, "rev-parse", "main") == before and git(repo, "status", "--porcelain") == ""


def test_unsigned_commits_are_named_and_signed_ones_pass(repo, ssh_signing):
    key, signers = ssh_signing
    scm = LocalGit(repo, allowed_signers=str(signers))
    assert len(scm.unsigned_commits("staging", "main")) == 2
    git(repo, "checkout", "--quiet", "-b", "signed", "main")
    ssh = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"]
    (repo / "signed.txt").write_text("signed\n")
    git(repo, "add", "signed.txt")
    git(repo, *ssh, "commit", "--quiet", "-S", "-m", "A signed commit")
    assert scm.unsigned_commits("signed", "main") == []


def test_the_portals_own_merge_and_tag_are_signed_with_its_key(repo, ssh_signing):
    key, signers = ssh_signing
    identity = Identity(signing_key=str(key), signing_format="ssh")
    scm = LocalGit(repo, identity=identity, allowed_signers=str(signers))
    merge = scm.merge("staging", "main", "Release v1.3.0")
    scm.tag("v1.3.0", merge, "v1.3.0")
    check = ["-c", f"gpg.ssh.allowedSignersFile={signers}"]
    assert (
        subprocess.run(
            ["git", "-C", str(repo), *check, "verify-commit", merge], capture_output=True
        ).returncode
        == 0
    )
    assert (
        subprocess.run(
            ["git", "-C", str(repo), *check, "verify-tag", "v1.3.0"], capture_output=True
        ).returncode
        == 0
    )


def test_a_release_is_reverted_by_one_commit(repo):
    scm = LocalGit(repo)
    merge = scm.merge("staging", "main", "Release v1.3.0")
    scm.tag("v1.3.0", merge, "v1.3.0")
    revert = scm.revert("v1.3.0", "main")
    assert revert != merge
    assert not (repo / "render.txt").exists() and not (repo / "crop.txt").exists()
    assert (repo / "app.txt").read_text() == "version one\n"


def test_unknown_refs_are_refused_in_words(repo):
    scm = LocalGit(repo)
    with pytest.raises(ScmError, match="There is no branch or tag 'release' in the repository."):
        scm.merge("release", "main", "Release")
    with pytest.raises(ScmError, match="There is no release v9.9.9 to revert."):
        scm.revert("v9.9.9", "main")
    assert scm.last_tag("main") == "v1.2.0"


def test_the_notes_list_the_newest_hundred_commits_and_count_the_rest(repo):
    git(repo, "checkout", "--quiet", "staging")
    for n in range(100):
        commit(repo, f"step-{n}.txt", f"{n}\n", f"Step {n}")
    commit(repo, "long.txt", "long\n", "A" * 300)  # a subject longer than a line of the notes
    git(repo, "checkout", "--quiet", "main")
    notes = LocalGit(repo).release_notes("v1.2.0", "staging").splitlines()
    assert len(notes) == 101 and notes[0].startswith(f"- {'A' * 199}… (")
    assert notes[1].startswith("- Step 99 (") and notes[99].startswith("- Step 1 (")
    assert notes[100] == "- … and 3 more commits"  # Step 0 and the two before it
    first = LocalGit(repo).release_notes(None, "staging").splitlines()
    assert len(first) == 101 and first[100] == "- … and 4 more commits"  # and the first release
