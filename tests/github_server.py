"""A local server that answers like the GitHub REST API, backed by a real git repository.

``FakeGitHub(repo_path=..., full_name="acme/shop")`` mirrors the repository into a bare clone and serves
it over HTTP with the JSON shapes documented at docs.github.com/rest, so a client written with PyGithub
can be pointed at ``server.url`` unchanged. Refs, tags, trees, commits and merges are real git objects
in the mirror; pull requests, reviews, check runs, statuses, releases and teams live in memory.
GitHub Actions' workflows are the YAML files in ``.github/workflows`` of the default branch, read from
the mirror (a dispatch checks its ref and inputs against the file at that ref); their runs live in
memory and move only when a test moves them (``move_run``), as GitHub's runners would.

Tests steer it with plain attributes (``tokens``, ``rate_limited_until``, ``drop_connections``,
``drop_once``, ``drop_reply_once``, ``answer_once``, ``tree_limit``, ``verified``, ``teams``,
``run_details``, ``hide_new_runs``) and helpers (``push_commit``, ``protect``, ``add_check_run``,
``add_status``, ``add_review``, ``open_pull``, ``move_run``, ``show_runs``), and read ``requests`` and
``runs`` to see what the client asked for.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import yaml

HTML = "https://github.example"
DOCS = "https://docs.github.com/rest"
RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
ZERO = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
COMPARE_FILES = 300  # GitHub's compare lists at most this many files
TREE_ENTRIES = 100_000  # and a recursive tree at most this many entries before it says `truncated`
PASSING = {"success", "neutral", "skipped"}
PERSON = re.compile(r"^(?P<name>.*) <(?P<email>.*)> (?P<ts>\d+) [+-]\d{4}$")
DEFAULT_PERMISSIONS = {
    "contents:write",
    "pull_requests:write",
    "checks:read",
    "statuses:read",
    "members:read",
    "actions:write",
}
WORKFLOWS = ".github/workflows"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}")


def iso(epoch: float | None = None) -> str:
    """An epoch (default: now) as GitHub writes times: UTC to the second with a ``Z``."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_sha(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40}", value) is not None


class GitHubError(Exception):
    """An error answered in GitHub's shape: ``{"message", "documentation_url", "status", "errors"?}``."""

    def __init__(self, status: int, message: str, *, errors: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}
        self.body = {"message": message, "documentation_url": DOCS, "status": str(status)}
        if errors is not None:
            self.body["errors"] = errors

    @classmethod
    def invalid(cls, resource: str, code: str, *, field: str | None = None, message: str | None = None):
        """422 Validation Failed with one entry in ``errors``."""
        error = {"resource": resource, "code": code, "field": field, "message": message}
        return cls(422, "Validation Failed", errors=[{k: v for k, v in error.items() if v is not None}])


def not_found(message: str = "Not Found") -> GitHubError:
    return GitHubError(404, message)


class FakeGitHub:
    """One GitHub repository (and its organisation's teams), and the server that exposes it.

    Use as a context manager, or call ``start()`` and ``stop()``. ``git(*args)`` runs git in the bare
    mirror. Commits count as verified when their sha is in ``verified``: at start, every commit with a
    ``gpgsig`` header (and every signed tag); later, ``push_commit(signed=True)`` and merge commits.
    ``requests`` records every request received, dropped ones included. ``logins`` maps commit e-mail
    addresses to GitHub logins, for the ``author``/``committer`` users of a commit (null otherwise).
    """

    def __init__(self, repo_path: str | Path, full_name: str = "acme/shop", *, login: str = "greenlight-bot"):
        self.repo_path, self.full_name, self.login = Path(repo_path), full_name, login
        self.owner, self.name = full_name.split("/")
        self.tokens: dict[str, set[str]] = {"good-token": set(DEFAULT_PERMISSIONS)}
        self.rate_limited_until: int | None = None
        self.drop_connections = 0
        self.drop_once: list[tuple[str, str]] = []  # (method, path ending) to drop once each
        # (method, path ending) to carry out once each and then drop the reply: the write is made,
        # the client sees the connection close, as when a network fails after GitHub acted
        self.drop_reply_once: list[tuple[str, str]] = []
        # (method, path ending, status, headers) to refuse once each with that status and headers
        self.answer_once: list[tuple[str, str, int, dict]] = []
        self.tree_limit = TREE_ENTRIES
        self.requests: list[tuple[str, str]] = []
        self.verified: set[str] = set()
        self.teams: dict[str, list[str]] = {}
        self.logins: dict[str, str] = {}
        self.protections: dict[str, list[str]] = {}
        self.check_runs: list[dict] = []
        self.statuses: list[dict] = []
        self.reviews: list[dict] = []
        self.pulls: dict[int, dict] = {}
        self.releases: list[dict] = []
        self.lock = threading.RLock()
        self.url = ""
        self._ids = itertools.count(1001)
        self._numbers = itertools.count(1)
        self._user_ids: dict[str, int] = {}
        self._workdir: str | None = None
        self._server: ThreadingHTTPServer | None = None
        # Actions. `run_details`: a dispatch asked to say which run it started says so (github.com
        # since February 2026); False refuses to be asked, as an older GitHub Enterprise Server.
        # `hide_new_runs`: new runs stay out of the lists until `show_runs()`, as GitHub lists a
        # dispatched run some seconds after it answered the dispatch.
        self.runs: list[dict] = []
        self.run_details = True
        self.hide_new_runs = False
        self._workflow_ids: dict[str, int] = {}
        self._run_numbers: dict[str, int] = {}

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeGitHub:
        """Mirror the repository, mark its signed objects verified and serve in a background thread."""
        self._workdir = tempfile.mkdtemp(prefix="fake-github-")
        self.git_dir = Path(self._workdir) / f"{self.owner}-{self.name}.git"
        clone = ["git", "clone", "--quiet", "--mirror", str(self.repo_path), str(self.git_dir)]
        subprocess.run(clone, check=True, capture_output=True)
        self.verified |= {sha for sha in self.rev_list("--all") if self.read_commit(sha)["signed"]}
        tags = self.git("for-each-ref", "refs/tags", "--format=%(objecttype) %(objectname)")
        for kind, sha in (line.split() for line in tags.splitlines()):
            if kind == "tag" and "-----BEGIN" in self.git("cat-file", "tag", sha):
                self.verified.add(sha)
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self.url = f"http://{host}:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def api(self) -> str:
        return f"{self.url}/repos/{self.full_name}"

    @property
    def html(self) -> str:
        return f"{HTML}/{self.full_name}"

    # Git.

    def run(self, *args: str, input: bytes | None = None, env: dict | None = None, ok=(0,)):
        """Run git in the bare mirror; raise unless it exits with one of ``ok``."""
        command = ["git", "-C", str(self.git_dir), *args]
        result = subprocess.run(command, input=input, capture_output=True, env={**os.environ, **(env or {})})
        if result.returncode not in ok:
            raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
        return result

    def git(self, *args: str, input: str | None = None, env: dict | None = None) -> str:
        """Run git in the bare mirror and return its standard output, stripped."""
        data = input.encode() if input is not None else None
        return self.run(*args, input=data, env=env).stdout.decode().strip()

    def resolve(self, name: str | None, kind: str = "commit") -> str | None:
        """The sha of the commit (or ``kind``) a branch, tag or sha names, or None."""
        if not name or name.startswith("-"):
            return None
        result = self.run("rev-parse", "--verify", "--quiet", f"{name}^{{{kind}}}", ok=(0, 1, 128))
        return result.stdout.decode().strip() or None

    def branch_sha(self, branch: str) -> str | None:
        return self.resolve(f"refs/heads/{branch}")

    def object_type(self, sha: str) -> str | None:
        return self.run("cat-file", "-t", sha, ok=(0, 1, 128)).stdout.decode().strip() or None

    def rev_list(self, *args: str) -> list[str]:
        return self.git("rev-list", *args).split()

    def read_commit(self, sha: str) -> dict:
        headers, _, message = self.git("cat-file", "commit", sha).partition("\n\n")
        commit = {"parents": [], "signed": False, "message": message}
        for line in headers.splitlines():
            key, _, value = line.partition(" ")
            if key == "parent":
                commit["parents"].append(value)
            elif key == "tree":
                commit["tree"] = value
            elif key in ("author", "committer"):
                commit[key] = self.person(value)
            elif key == "gpgsig":
                commit["signed"] = True
        return commit

    @staticmethod
    def person(line: str) -> dict:
        match = PERSON.match(line)
        return {"name": match["name"], "email": match["email"], "date": iso(int(match["ts"]))}

    def tree_entries(self, treeish: str) -> dict[str, tuple[str, str, str]]:
        """Every file (or submodule) under a tree, recursively: path -> (mode, type, sha)."""
        entries = {}
        for record in filter(None, self.run("ls-tree", "-r", "-z", treeish).stdout.decode().split("\0")):
            meta, path = record.split("\t", 1)
            mode, kind, sha = meta.split()
            entries[path] = (mode, kind, sha)
        return entries

    @staticmethod
    def place(entries: dict, path: str, leaf: tuple[str, str, str] | None) -> None:
        """Put a leaf at path (None removes the path), clearing whatever stood in its way."""
        path = path.strip("/")
        for key in [key for key in entries if key == path or key.startswith(f"{path}/")]:
            del entries[key]
        parts = path.split("/")
        for i in range(1, len(parts)):
            entries.pop("/".join(parts[:i]), None)
        if leaf is not None:
            entries[path] = leaf

    def write_blob(self, content: str | bytes) -> str:
        data = content.encode() if isinstance(content, str) else content
        return self.run("hash-object", "-w", "--stdin", input=data).stdout.decode().strip()

    def write_tree(self, entries: dict[str, tuple[str, str, str]]) -> str:
        """Build the nested trees bottom-up with mktree and return the root tree's sha."""
        root: dict = {}
        for path, leaf in entries.items():
            *dirs, name = path.split("/")
            node = root
            for part in dirs:
                node = node.setdefault(part, {})
            node[name] = leaf

        def build(node: dict) -> str:
            lines = []
            for name, value in node.items():
                mode, kind, sha = ("040000", "tree", build(value)) if isinstance(value, dict) else value
                lines.append(f"{mode} {kind} {sha}\t{name}\0")
            return self.git("mktree", "-z", input="".join(lines))

        return build(root)

    def commit_tree(self, tree: str, parents: list[str], message: str, author: dict, committer: dict) -> str:
        """Write a commit object; ``author``/``committer`` are ``{"name", "email", "date"?}``."""
        env = {}
        for role, who in (("AUTHOR", author), ("COMMITTER", committer)):
            when = datetime.fromisoformat(who["date"]).timestamp() if who.get("date") else time.time()
            env.update({f"GIT_{role}_NAME": who["name"], f"GIT_{role}_EMAIL": who["email"]})
            env[f"GIT_{role}_DATE"] = f"{int(when)} +0000"
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        text = message if message.endswith("\n") else f"{message}\n"
        return self.git("commit-tree", "--no-gpg-sign", tree, *parent_args, input=text, env=env)

    def merge_tree(self, base: str, head: str) -> str | None:
        """The tree of merging head into base, or None on conflict."""
        result = self.run("merge-tree", "--write-tree", base, head, ok=(0, 1))
        return result.stdout.decode().split("\n", 1)[0] if result.returncode == 0 else None

    def merge_base(self, a: str, b: str) -> str | None:
        return self.run("merge-base", a, b, ok=(0, 1)).stdout.decode().strip() or None

    def diff_files(self, old: str | None, new: str) -> list[dict]:
        """GitHub's file entries for the change from ``old`` (None: nothing) to ``new``."""
        out = self.run("diff-tree", "-r", "-z", "-M", "--raw", "--numstat", old or EMPTY_TREE, new)
        tokens, files, stats, i = out.stdout.decode().split("\0"), {}, {}, 0
        names = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied"}
        while i < len(tokens) and tokens[i]:
            if tokens[i].startswith(":"):
                _, _, old_sha, new_sha, status = tokens[i][1:].split(" ")
                renamed = status[0] in "RC"
                src, dst = tokens[i + 1], tokens[i + 2 if renamed else i + 1]
                files[dst] = {"sha": old_sha if status == "D" else new_sha, "filename": dst}
                files[dst]["status"] = names.get(status[0], "changed")
                if renamed:
                    files[dst]["previous_filename"] = src
                i += 3 if renamed else 2
            else:
                added, deleted, path = tokens[i].split("\t", 2)
                stats[path or tokens[i + 2]] = [int(n) if n.isdigit() else 0 for n in (added, deleted)]
                i += 1 if path else 3
        for path, entry in files.items():
            additions, deletions = stats.get(path, (0, 0))
            entry.update(additions=additions, deletions=deletions, changes=additions + deletions)
            entry["blob_url"] = f"{self.html}/blob/{new}/{quote(path)}"
            entry["raw_url"] = f"{self.html}/raw/{new}/{quote(path)}"
            entry["contents_url"] = f"{self.api}/contents/{quote(path)}?ref={new}"
        return list(files.values())

    # What tests set up.

    def push_commit(
        self,
        branch: str,
        files: dict[str, str | None],
        message: str,
        *,
        signed: bool = False,
        start: str | None = None,
        author: tuple[str, str] = ("Dana Dev", "dana@example.com"),
    ) -> str:
        """Commit files onto a branch (None deletes a file) as a push would, and return the new sha.

        A branch that does not exist yet is created from ``start`` (a branch, tag or sha)."""
        with self.lock:
            old = self.branch_sha(branch)
            parent = old or self.resolve(start)
            if parent is None:
                raise ValueError(f"no branch {branch!r} and no start to create it from")
            entries = self.tree_entries(parent)
            for path, content in files.items():
                leaf = None if content is None else ("100644", "blob", self.write_blob(content))
                self.place(entries, path, leaf)
            who = {"name": author[0], "email": author[1]}
            sha = self.commit_tree(self.write_tree(entries), [parent], message, who, who)
            self.git("update-ref", f"refs/heads/{branch}", sha, old or ZERO)
            if signed:
                self.verified.add(sha)
            return sha

    def protect(self, branch: str, contexts: list[str]) -> None:
        """Require these checks (check run names or status contexts) to pass before merging into branch."""
        self.protections[branch] = list(contexts)

    def add_check_run(
        self, sha: str, name: str, status: str = "completed", conclusion: str = "success"
    ) -> int:
        with self.lock:
            run = {"id": next(self._ids), "sha": self.resolve(sha) or sha, "name": name, "status": status}
            run.update(conclusion=conclusion if status == "completed" else None, at=iso())
            self.check_runs.append(run)
            return run["id"]

    def add_status(self, sha: str, context: str, state: str, description: str = "") -> int:
        with self.lock:
            status = {"id": next(self._ids), "sha": self.resolve(sha) or sha, "context": context}
            status.update(state=state, description=description, at=iso())
            self.statuses.append(status)
            return status["id"]

    def add_review(self, pr_number: int, login: str | None, state: str, body: str = "") -> int:
        """Record a review of the pull request's current head (APPROVED, CHANGES_REQUESTED, ...);
        login None is a reviewer whose account was deleted (GitHub answers ``"user": null``)."""
        with self.lock:
            pr = self.refresh(self.pulls[pr_number])
            review = {"id": next(self._ids), "number": pr_number, "login": login, "state": state}
            review.update(body=body, commit_id=pr["head_sha"], submitted_at=iso())
            self.reviews.append(review)
            return review["id"]

    def open_pull(self, head: str, base: str, title: str, body: str = "", *, login: str | None = None) -> int:
        """Open a pull request with the checks POST /pulls makes, and return its number."""
        with self.lock:
            head = head.split(":", 1)[-1]
            head_sha, base_sha = self.branch_sha(head), self.branch_sha(base)
            if head_sha is None or base_sha is None:
                raise GitHubError.invalid("PullRequest", "invalid", field="base" if head_sha else "head")
            if any(
                pr["state"] == "open" and (pr["head"], pr["base"]) == (head, base)
                for pr in self.pulls.values()
            ):
                message = f"A pull request already exists for {self.owner}:{head}."
                raise GitHubError.invalid("PullRequest", "custom", message=message)
            if not self.rev_list(head_sha, f"^{base_sha}"):
                message = f"No commits between {base} and {head}"
                raise GitHubError.invalid("PullRequest", "custom", message=message)
            number, now = next(self._numbers), iso()
            self.pulls[number] = {
                "id": next(self._ids),
                "number": number,
                "title": title,
                "body": body,
                "head": head,
                "base": base,
                "login": login or self.login,
                "state": "open",
                "created_at": now,
                "updated_at": now,
                "closed_at": None,
                "merged_at": None,
                "merged_by": None,
                "merge_commit_sha": None,
                "head_sha": head_sha,
                "base_sha": base_sha,
            }
            return number

    def move_run(self, run_id: int, status: str = "in_progress", conclusion: str | None = None) -> dict:
        """Move a workflow run on as its runner would: ``in_progress``, or ``completed`` with a
        conclusion (``success``, ``failure``, ``cancelled``, ``timed_out``, ...)."""
        with self.lock:
            run = next(run for run in self.runs if run["id"] == run_id)
            if status == "completed" and not conclusion:
                raise ValueError("a completed run has a conclusion")
            run.update(
                status=status, conclusion=conclusion if status == "completed" else None, updated=time.time()
            )
            return run

    def show_runs(self) -> None:
        """List the runs ``hide_new_runs`` kept out of the lists."""
        with self.lock:
            for run in self.runs:
                run["listed"] = True

    # Actions.

    def workflow_paths(self, commit: str = "refs/heads/main") -> list[str]:
        """The workflow files at a commit (default: the default branch, where GitHub lists them)."""
        listed = self.run("ls-tree", "-z", "--name-only", f"{commit}:{WORKFLOWS}", ok=(0, 128))
        names = filter(None, listed.stdout.decode().split("\0")) if listed.returncode == 0 else []
        return [f"{WORKFLOWS}/{name}" for name in names if name.endswith((".yml", ".yaml"))]

    def workflow_file(self, path: str, commit: str = "refs/heads/main") -> dict | None:
        """The workflow file at a commit, parsed; None when it is not there or is not YAML."""
        found = self.run("cat-file", "blob", f"{commit}:{path}", ok=(0, 128))
        try:
            definition = yaml.safe_load(found.stdout) if found.returncode == 0 else None
        except yaml.YAMLError:
            return None
        return definition if isinstance(definition, dict) else None

    @staticmethod
    def triggers(definition: dict) -> dict:
        """The workflow's ``on:`` as event -> settings (YAML 1.1 reads a bare ``on`` key as true)."""
        on = definition.get("on", definition.get(True))
        if isinstance(on, str):
            return {on: None}
        if isinstance(on, list):
            return dict.fromkeys(on)
        return on if isinstance(on, dict) else {}

    def workflow_id(self, path: str) -> int:
        with self.lock:
            return self._workflow_ids.setdefault(path, next(self._ids))

    def find_workflow(self, key: str) -> str | None:
        """The path of the workflow an API path names: by id, or by file name."""
        return next(
            (p for p in self.workflow_paths() if key in (str(self.workflow_id(p)), p.rsplit("/", 1)[-1])),
            None,
        )

    def workflow_name(self, path: str, definition: dict | None) -> str:
        name = (definition or {}).get("name")
        return name if isinstance(name, str) and name else path

    def dispatch_run(self, path: str, ref: str, sha: str, inputs: dict[str, str]) -> dict:
        """The run a ``workflow_dispatch`` starts: queued, titled by the workflow's ``run-name``."""
        definition = self.workflow_file(path, sha) or {}
        name = self.workflow_name(path, definition)
        template = definition.get("run-name")
        context = {
            "github.ref_name": ref,
            "github.actor": self.login,
            "github.event_name": "workflow_dispatch",
        }

        def value(match: re.Match) -> str:
            expression = match[1].strip()
            for prefix in ("inputs.", "github.event.inputs."):
                if expression.startswith(prefix):
                    return inputs.get(expression.removeprefix(prefix), "")
            return context.get(expression, "")

        with self.lock:
            now = time.time()
            self._run_numbers[path] = self._run_numbers.get(path, 0) + 1
            run = {
                "id": next(self._ids),
                "path": path,
                "name": name,
                "ref": ref,
                "sha": sha,
                "title": EXPRESSION.sub(value, template) if isinstance(template, str) else name,
                "inputs": inputs,
                "status": "queued",
                "conclusion": None,
                "created": now,
                "updated": now,
                "number": self._run_numbers[path],
                "listed": not self.hide_new_runs,
            }
            self.runs.append(run)
            return run

    # Derived state.

    def refresh(self, pr: dict) -> dict:
        """While a pull request is open, its head and base follow their branches."""
        if pr["state"] == "open":
            pr["head_sha"] = self.branch_sha(pr["head"]) or pr["head_sha"]
            pr["base_sha"] = self.branch_sha(pr["base"]) or pr["base_sha"]
        return pr

    def pull_commits(self, pr: dict) -> list[str]:
        """The pull request's commits, oldest first."""
        self.refresh(pr)
        return self.rev_list("--reverse", pr["head_sha"], f"^{pr['base_sha']}")

    def check_state(self, sha: str, context: str) -> str | None:
        """success, pending or failure of one required check on a commit; None when nothing reported."""
        states = set()
        runs = [run for run in self.check_runs if run["sha"] == sha and run["name"] == context]
        if runs and runs[-1]["status"] != "completed":
            states.add("pending")
        elif runs:
            states.add("success" if runs[-1]["conclusion"] in PASSING else "failure")
        reported = [s["state"] for s in self.statuses if s["sha"] == sha and s["context"] == context]
        if reported:
            states.add(reported[-1] if reported[-1] in ("success", "pending") else "failure")
        return next((state for state in ("success", "pending", "failure") if state in states), None)

    def merge_blocker(self, branch: str, sha: str) -> str | None:
        """GitHub's message for the first required check of branch that does not pass on sha."""
        for context in self.protections.get(branch, []):
            state = self.check_state(sha, context)
            if state != "success":
                verb = {None: "is expected", "pending": "is in progress"}.get(state, "is failing")
                return f'Required status check "{context}" {verb}.'
        return None

    # JSON shapes.

    def user_json(self, login: str, kind: str = "User") -> dict:
        user_id = self._user_ids.setdefault(login, 5000 + len(self._user_ids))
        path = "orgs" if kind == "Organization" else "users"
        return {
            "login": login,
            "id": user_id,
            "url": f"{self.url}/{path}/{login}",
            "html_url": f"{HTML}/{login}",
            "type": kind,
            "site_admin": False,
        }

    def repo_json(self) -> dict:
        return {
            "id": 4242,
            "name": self.name,
            "full_name": self.full_name,
            "private": True,
            "owner": self.user_json(self.owner, "Organization"),
            "url": self.api,
            "html_url": self.html,
            "default_branch": "main",
            "fork": False,
            "archived": False,
        }

    def verification(self, sha: str) -> dict:
        verified = sha in self.verified
        return {
            "verified": verified,
            "reason": "valid" if verified else "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        }

    def git_commit_json(self, sha: str) -> dict:
        commit, api = self.read_commit(sha), self.api
        parents = [
            {"sha": p, "url": f"{api}/git/commits/{p}", "html_url": f"{self.html}/commit/{p}"}
            for p in commit["parents"]
        ]
        return {
            "sha": sha,
            "url": f"{api}/git/commits/{sha}",
            "html_url": f"{self.html}/commit/{sha}",
            "author": commit["author"],
            "committer": commit["committer"],
            "message": commit["message"].rstrip("\n"),
            "parents": parents,
            "tree": {"sha": commit["tree"], "url": f"{api}/git/trees/{commit['tree']}"},
            "verification": self.verification(sha),
        }

    def commit_json(self, sha: str, *, with_files: bool = False) -> dict:
        git_commit = self.git_commit_json(sha)
        inner = {key: git_commit[key] for key in ("author", "committer", "message", "tree", "verification")}
        users = {role: self.logins.get(git_commit[role]["email"]) for role in ("author", "committer")}
        data = {
            "sha": sha,
            "url": f"{self.api}/commits/{sha}",
            "html_url": git_commit["html_url"],
            "commit": {**inner, "url": git_commit["url"], "comment_count": 0},
            **{role: self.user_json(login) if login else None for role, login in users.items()},
            "parents": [
                {**parent, "url": f"{self.api}/commits/{parent['sha']}"} for parent in git_commit["parents"]
            ],
        }
        if with_files:
            parents = git_commit["parents"]
            files = data["files"] = self.diff_files(parents[0]["sha"] if parents else None, sha)
            adds, dels = sum(f["additions"] for f in files), sum(f["deletions"] for f in files)
            data["stats"] = {"total": adds + dels, "additions": adds, "deletions": dels}
        return data

    def ref_json(self, ref: str, sha: str, kind: str) -> dict:
        return {
            "ref": ref,
            "node_id": f"REF_{ref}",
            "url": f"{self.api}/git/{ref}",
            "object": {"type": kind, "sha": sha, "url": f"{self.api}/git/{kind}s/{sha}"},
        }

    def tag_json(self, sha: str) -> dict:
        headers, _, message = self.git("cat-file", "tag", sha).partition("\n\n")
        fields = dict(line.split(" ", 1) for line in headers.splitlines())
        target = {
            "type": fields["type"],
            "sha": fields["object"],
            "url": f"{self.api}/git/{fields['type']}s/{fields['object']}",
        }
        return {
            "sha": sha,
            "url": f"{self.api}/git/tags/{sha}",
            "tag": fields["tag"],
            "message": message.rstrip("\n"),
            "tagger": self.person(fields["tagger"]),
            "object": target,
            "verification": self.verification(sha),
        }

    def pull_json(self, pr: dict) -> dict:
        self.refresh(pr)
        number, head, base = pr["number"], pr["head_sha"], pr["base_sha"]
        mergeable, mergeable_state = None, "unknown"
        if pr["state"] == "open":
            mergeable = self.merge_tree(base, head) is not None
            blocked = self.merge_blocker(pr["base"], head) is not None
            mergeable_state = "dirty" if not mergeable else "blocked" if blocked else "clean"
        files = self.diff_files(self.merge_base(base, head), head)
        sides = {
            side: {
                "label": f"{self.owner}:{pr[side]}",
                "ref": pr[side],
                "sha": pr[f"{side}_sha"],
                "user": self.user_json(self.owner, "Organization"),
                "repo": self.repo_json(),
            }
            for side in ("head", "base")
        }
        return {
            "id": pr["id"],
            "number": number,
            "url": f"{self.api}/pulls/{number}",
            "html_url": f"{self.html}/pull/{number}",
            "state": pr["state"],
            "title": pr["title"],
            "body": pr["body"],
            "user": self.user_json(pr["login"]),
            "draft": False,
            **sides,
            "merged": pr["merged_at"] is not None,
            "merged_at": pr["merged_at"],
            "merged_by": self.user_json(pr["merged_by"]) if pr["merged_by"] else None,
            "merge_commit_sha": pr["merge_commit_sha"],
            "mergeable": mergeable,
            "mergeable_state": mergeable_state,
            "commits": len(self.pull_commits(pr)),
            "additions": sum(f["additions"] for f in files),
            "deletions": sum(f["deletions"] for f in files),
            "changed_files": len(files),
            "created_at": pr["created_at"],
            "updated_at": pr["updated_at"],
            "closed_at": pr["closed_at"],
            "labels": [],
            "requested_reviewers": [],
        }

    def review_json(self, review: dict) -> dict:
        number, review_id = review["number"], review["id"]
        user = self.user_json(review["login"]) if review["login"] else None
        return {
            "id": review_id,
            "user": user,
            "body": review["body"],
            "state": review["state"],
            "commit_id": review["commit_id"],
            "submitted_at": review["submitted_at"],
            "html_url": f"{self.html}/pull/{number}#pullrequestreview-{review_id}",
            "pull_request_url": f"{self.api}/pulls/{number}",
        }

    def check_run_json(self, run: dict) -> dict:
        run_id, done = run["id"], run["status"] == "completed"
        return {
            "id": run_id,
            "name": run["name"],
            "head_sha": run["sha"],
            "status": run["status"],
            "conclusion": run["conclusion"],
            "url": f"{self.api}/check-runs/{run_id}",
            "html_url": f"{self.html}/runs/{run_id}",
            "details_url": f"{self.html}/actions/runs/{run_id}",
            "started_at": run["at"],
            "completed_at": run["at"] if done else None,
            "output": {"title": None, "summary": None, "text": None, "annotations_count": 0},
            "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
            "pull_requests": [],
        }

    def status_json(self, status: dict) -> dict:
        return {
            "id": status["id"],
            "context": status["context"],
            "state": status["state"],
            "description": status["description"],
            "target_url": None,
            "url": f"{self.api}/statuses/{status['sha']}",
            "created_at": status["at"],
            "updated_at": status["at"],
        }

    def release_json(self, release: dict) -> dict:
        release_id, tag = release["id"], quote(release["tag_name"])
        uploads = f"https://uploads.github.example/repos/{self.full_name}/releases/{release_id}/assets"
        return {
            **{key: value for key, value in release.items() if key != "login"},
            "url": f"{self.api}/releases/{release_id}",
            "html_url": f"{self.html}/releases/tag/{tag}",
            "author": self.user_json(release["login"]),
            "assets": [],
            "upload_url": f"{uploads}{{?name,label}}",
            "tarball_url": f"{self.api}/tarball/{tag}",
            "zipball_url": f"{self.api}/zipball/{tag}",
        }

    def workflow_json(self, path: str) -> dict:
        workflow_id, file = self.workflow_id(path), path.rsplit("/", 1)[-1]
        return {
            "id": workflow_id,
            "node_id": f"W_{workflow_id}",
            "path": path,
            "state": "active",
            "name": self.workflow_name(path, self.workflow_file(path)),
            "created_at": iso(0),
            "updated_at": iso(0),
            "url": f"{self.api}/actions/workflows/{workflow_id}",
            "html_url": f"{self.html}/blob/main/{path}",
            "badge_url": f"{self.html}/workflows/{quote(file)}/badge.svg",
        }

    def run_json(self, run: dict) -> dict:
        run_id, api = run["id"], f"{self.api}/actions/runs/{run['id']}"
        workflow_id = self.workflow_id(run["path"])
        return {
            "id": run_id,
            "node_id": f"WFR_{run_id}",
            "name": run["name"],
            "display_title": run["title"],
            "head_branch": run["ref"],
            "head_sha": run["sha"],
            "path": run["path"],
            "run_number": run["number"],
            "run_attempt": 1,
            "event": "workflow_dispatch",
            "status": run["status"],
            "conclusion": run["conclusion"],
            "workflow_id": workflow_id,
            "check_suite_id": run_id,
            "check_suite_node_id": f"CS_{run_id}",
            "url": api,
            "html_url": f"{self.html}/actions/runs/{run_id}",
            "jobs_url": f"{api}/jobs",
            "logs_url": f"{api}/logs",
            "check_suite_url": f"{self.api}/check-suites/{run_id}",
            "artifacts_url": f"{api}/artifacts",
            "cancel_url": f"{api}/cancel",
            "rerun_url": f"{api}/rerun",
            "previous_attempt_url": None,
            "workflow_url": f"{self.api}/actions/workflows/{workflow_id}",
            "pull_requests": [],
            "created_at": iso(run["created"]),
            "updated_at": iso(run["updated"]),
            "run_started_at": iso(run["created"]),
            "actor": self.user_json(self.login),
            "triggering_actor": self.user_json(self.login),
            "repository": self.repo_json(),
            "head_repository": self.repo_json(),
        }

    def team_json(self, org: str, slug: str) -> dict:
        url = f"{self.url}/orgs/{org}/teams/{slug}"
        team_id = self._user_ids.setdefault(f"{org}/{slug}", 9000 + len(self._user_ids))
        return {
            "id": team_id,
            "url": url,
            "html_url": f"{HTML}/orgs/{org}/teams/{slug}",
            "name": slug,
            "slug": slug,
            "members_url": f"{url}/members{{/member}}",
            "privacy": "closed",
            "permission": "pull",
        }


class _Handler(BaseHTTPRequestHandler):
    """Authenticates, routes and answers one request against the server's ``FakeGitHub``."""

    protocol_version = "HTTP/1.1"
    REPO = "/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
    PULL = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pulls/(?P<number>\d+)"
    TEAM = "/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)"
    ROUTES = [
        ("GET", REPO, None, "get_repo"),
        ("GET", REPO + "/branches/(?P<branch>.+)", "contents:read", "get_branch"),
        ("GET", REPO + "/tags", "contents:read", "list_tags"),
        ("GET", REPO + "/git/refs?/(?P<ref>.+)", "contents:read", "get_ref"),
        ("GET", REPO + "/git/(?:refs|matching-refs/(?P<ref>.*))", "contents:read", "matching_refs"),
        ("POST", REPO + "/git/refs", "contents:write", "create_ref"),
        ("PATCH", REPO + "/git/refs?/(?P<ref>.+)", "contents:write", "update_ref"),
        ("DELETE", REPO + "/git/refs?/(?P<ref>.+)", "contents:write", "delete_ref"),
        ("GET", REPO + "/git/tags/(?P<sha>[0-9a-f]{40})", "contents:read", "get_tag"),
        ("POST", REPO + "/git/tags", "contents:write", "create_tag"),
        ("GET", REPO + "/git/commits/(?P<sha>[0-9a-f]{40})", "contents:read", "get_git_commit"),
        ("POST", REPO + "/git/commits", "contents:write", "create_commit"),
        ("GET", REPO + "/git/trees/(?P<sha>.+)", "contents:read", "get_tree"),
        ("POST", REPO + "/git/trees", "contents:write", "create_tree"),
        ("GET", REPO + "/contents(?:/(?P<path>.*))?", "contents:read", "get_contents"),
        ("GET", REPO + "/commits", "contents:read", "list_commits"),
        ("GET", REPO + "/commits/(?P<ref>.+)/pulls", "pull_requests:read", "commit_pulls"),
        ("GET", REPO + "/commits/(?P<ref>.+)/check-runs", "checks:read", "commit_check_runs"),
        ("GET", REPO + "/commits/(?P<ref>.+)/status", "statuses:read", "combined_status"),
        ("GET", REPO + "/commits/(?P<ref>.+)", "contents:read", "get_commit"),
        ("GET", REPO + r"/compare/(?P<base>.+?)\.\.\.(?P<head>.+)", "contents:read", "compare"),
        ("GET", REPO + "/pulls", "pull_requests:read", "list_pulls"),
        ("POST", REPO + "/pulls", "pull_requests:write", "create_pull"),
        ("GET", PULL, "pull_requests:read", "get_pull"),
        ("GET", PULL + "/reviews", "pull_requests:read", "pull_reviews"),
        ("GET", PULL + "/files", "pull_requests:read", "pull_files"),
        ("GET", PULL + "/commits", "pull_requests:read", "pull_commits"),
        ("GET", PULL + "/merge", "pull_requests:read", "is_merged"),
        ("PUT", PULL + "/merge", "contents:write", "merge_pull"),
        ("GET", REPO + "/releases", "contents:read", "list_releases"),
        ("POST", REPO + "/releases", "contents:write", "create_release"),
        ("POST", REPO + "/releases/generate-notes", "contents:write", "generate_notes"),
        ("GET", REPO + "/releases/tags/(?P<tag>.+)", "contents:read", "release_by_tag"),
        ("GET", REPO + r"/releases/(?P<release_id>\d+)", "contents:read", "get_release"),
        ("GET", "/orgs/(?P<org>[^/]+)", None, "get_org"),
        ("GET", TEAM, "members:read", "get_team"),
        ("GET", TEAM + "/members", "members:read", "team_members"),
        ("GET", "/users/(?P<login>[^/]+)", None, "get_user"),
        ("GET", REPO + "/actions/workflows", "actions:read", "list_workflows"),
        ("GET", REPO + "/actions/workflows/(?P<workflow>[^/]+)", "actions:read", "get_workflow"),
        (
            "POST",
            REPO + "/actions/workflows/(?P<workflow>[^/]+)/dispatches",
            "actions:write",
            "dispatch_workflow",
        ),
        ("GET", REPO + "/actions/workflows/(?P<workflow>[^/]+)/runs", "actions:read", "workflow_runs"),
        ("GET", REPO + r"/actions/runs/(?P<run_id>\d+)", "actions:read", "get_run"),
    ]
    ROUTES = [(method, re.compile(pattern), need, name) for method, pattern, need, name in ROUTES]

    def do_GET(self):
        self.answer("GET")

    def do_POST(self):
        self.answer("POST")

    def do_PATCH(self):
        self.answer("PATCH")

    def do_PUT(self):
        self.answer("PUT")

    def do_DELETE(self):
        self.answer("DELETE")

    def log_message(self, *args):
        pass

    def answer(self, method: str) -> None:
        self.gh: FakeGitHub = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.extra: dict[str, str] = {}
        with self.gh.lock:
            self.gh.requests.append((method, self.path))
            path = urlsplit(self.path).path
            dropped = next((r for r in self.gh.drop_once if r[0] == method and path.endswith(r[1])), None)
            if dropped is not None:
                self.gh.drop_once.remove(dropped)
            if self.gh.drop_connections > 0 or dropped is not None:
                self.gh.drop_connections -= dropped is None
                self.close_connection = True
                return
            lost = next((r for r in self.gh.drop_reply_once if r[0] == method and path.endswith(r[1])), None)
            refused = next((r for r in self.gh.answer_once if r[0] == method and path.endswith(r[1])), None)
            try:
                if refused is not None:
                    self.gh.answer_once.remove(refused)
                    raise GitHubError(refused[2], f"Refused for the test ({refused[2]})", headers=refused[3])
                status, payload = self.dispatch(method, raw)
            except GitHubError as error:
                status, payload = error.status, error.body
                self.extra.update(error.headers)
            except Exception as error:
                status, payload = (
                    500,
                    {"message": f"{type(error).__name__}: {error}", "documentation_url": DOCS},
                )
            if lost is not None and status < 400:
                self.gh.drop_reply_once.remove(lost)
                self.close_connection = True
                return
            used = min(len(self.gh.requests), 4999)
        headers = {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(5000 - used),
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
            **self.extra,
        }
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def dispatch(self, method: str, raw: bytes) -> tuple[int, object]:
        """Rate limit, authentication, route, permission, then the endpoint: ``(status, payload)``."""
        gh, until = self.gh, self.gh.rate_limited_until
        if until is not None and until > time.time():
            message = (
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, "
                "please include the request ID 0000:0000:0000000:0000000:00000000."
            )
            headers = {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Used": "5000",
                "X-RateLimit-Reset": str(until),
                "X-RateLimit-Resource": "core",
            }
            error = GitHubError(403, message, headers=headers)
            error.body = {"message": message, "documentation_url": RATE_LIMIT_DOCS}
            raise error
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        granted = gh.tokens.get(token.strip()) if scheme.lower() in ("token", "bearer") else None
        if granted is None:
            raise GitHubError(401, "Bad credentials")
        url = urlsplit(self.path)
        self.query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        for route_method, pattern, permission, handler in self.ROUTES:
            match = pattern.fullmatch(url.path.rstrip("/"))
            if match is None or route_method != method:
                continue
            params = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
            if (
                "owner" in params
                and f"{params.pop('owner')}/{params.pop('repo')}".lower() != gh.full_name.lower()
            ):
                raise not_found()
            if permission and not {permission, permission.replace(":read", ":write")} & granted:
                accepted = {"X-Accepted-GitHub-Permissions": permission.replace(":", "=")}
                raise GitHubError(403, "Resource not accessible by personal access token", headers=accepted)
            try:
                self.body = json.loads(raw) if raw else {}
            except ValueError:
                raise GitHubError(400, "Problems parsing JSON") from None
            result = getattr(self, handler)(**params)
            return result if isinstance(result, tuple) else (200, result)
        raise not_found()

    # Helpers.

    def paginate(self, items: list, default: int = 30, maximum: int = 100) -> list:
        """One page of items (``page``, ``per_page``), with GitHub's Link header to the others."""
        per_page = max(1, min(int(self.query.get("per_page", default)), maximum))
        page, last = max(1, int(self.query.get("page", 1))), max(1, math.ceil(len(items) / per_page))
        rels = [("prev", page - 1), ("first", 1)] if page > 1 else []
        rels += [("next", page + 1), ("last", last)] if page < last else []
        base = f"{self.gh.url}{urlsplit(self.path).path}"
        links = [f'<{base}?{urlencode({**self.query, "page": n})}>; rel="{rel}"' for rel, n in rels]
        if links:
            self.extra["Link"] = ", ".join(links)
        return items[(page - 1) * per_page : page * per_page]

    def need(self, name: str | None, kind: str = "commit") -> str:
        """The sha a branch, tag or sha names (an ``owner:`` prefix is allowed); 404 if none."""
        sha = self.gh.resolve(name.split(":", 1)[-1] if name else None, kind)
        if sha is None:
            raise not_found()
        return sha

    def pull(self, number: str) -> dict:
        if int(number) not in self.gh.pulls:
            raise not_found()
        return self.gh.refresh(self.gh.pulls[int(number)])

    def me(self) -> dict:
        """The git identity of the token's user."""
        return {"name": self.gh.login, "email": f"{self.gh.login}@users.noreply.github.example"}

    # Repository, branches, refs and tags.

    def get_repo(self):
        return self.gh.repo_json()

    def get_branch(self, branch: str):
        gh, sha = self.gh, self.gh.branch_sha(branch)
        if sha is None:
            raise not_found("Branch not found")
        contexts = gh.protections.get(branch)
        checks = {
            "enforcement_level": "non_admins" if contexts else "off",
            "contexts": contexts or [],
            "checks": [{"context": context, "app_id": None} for context in contexts or []],
        }
        return {
            "name": branch,
            "commit": gh.commit_json(sha),
            "protected": contexts is not None,
            "protection": {"enabled": contexts is not None, "required_status_checks": checks},
            "protection_url": f"{gh.api}/branches/{quote(branch)}/protection",
        }

    def list_tags(self):
        out = self.gh.git(
            "for-each-ref",
            "refs/tags",
            "--sort=-v:refname",
            "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)",
        )
        tags = []
        for name, sha, peeled in (line.split("\0") for line in out.splitlines()):
            api, commit = self.gh.api, peeled or sha
            tags.append(
                {
                    "name": name,
                    "commit": {"sha": commit, "url": f"{api}/commits/{commit}"},
                    "zipball_url": f"{api}/zipball/refs/tags/{name}",
                    "node_id": f"REF_{name}",
                    "tarball_url": f"{api}/tarball/refs/tags/{name}",
                }
            )
        return self.paginate(tags)

    def all_refs(self) -> list[dict]:
        out = self.gh.git("for-each-ref", "--format=%(refname) %(objectname) %(objecttype)", "refs/")
        return [self.gh.ref_json(*line.split(" ")) for line in out.splitlines()]

    def get_ref(self, ref: str):
        found = [found for found in self.all_refs() if found["ref"] == f"refs/{ref}"]
        if not found:
            raise not_found()
        return found[0]

    def matching_refs(self, ref: str = ""):
        return self.paginate([found for found in self.all_refs() if found["ref"].startswith(f"refs/{ref}")])

    def new_target(self) -> tuple[str, str]:
        """The body's ``sha`` and the type of object it names; 422 unless it exists."""
        sha = self.body.get("sha")
        kind = self.gh.object_type(sha) if is_sha(sha) else None
        if kind is None:
            raise GitHubError(422, "Object does not exist")
        return sha, kind

    def create_ref(self):
        ref = self.body.get("ref") or ""
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise GitHubError(422, "Reference name is invalid")
        sha, kind = self.new_target()
        if self.gh.resolve(ref, "object"):
            raise GitHubError(422, "Reference already exists")
        self.gh.git("update-ref", ref, sha, ZERO)
        return 201, self.gh.ref_json(ref, sha, kind)

    def update_ref(self, ref: str):
        old = self.gh.resolve(f"refs/{ref}", "object")
        if old is None:
            raise GitHubError(422, "Reference does not exist")
        sha, kind = self.new_target()
        fast_forward = self.gh.run("merge-base", "--is-ancestor", old, sha, ok=(0, 1)).returncode == 0
        if not fast_forward and not self.body.get("force"):
            raise GitHubError(422, "Update is not a fast forward")
        self.gh.git("update-ref", f"refs/{ref}", sha, old)
        return self.gh.ref_json(f"refs/{ref}", sha, kind)

    def delete_ref(self, ref: str):
        old = self.gh.resolve(f"refs/{ref}", "object")
        if old is None:
            raise GitHubError(422, "Reference does not exist")
        self.gh.git("update-ref", "-d", f"refs/{ref}", old)
        return 204, None

    def get_tag(self, sha: str):
        if self.gh.object_type(sha) != "tag":
            raise not_found()
        return self.gh.tag_json(sha)

    def create_tag(self):
        target, name = self.body.get("object"), self.body.get("tag")
        kind = self.gh.object_type(target) if is_sha(target) else None
        if kind is None or not name:
            raise GitHubError.invalid("Tag", "invalid", field="tag" if kind else "object")
        tagger = {**self.me(), **(self.body.get("tagger") or {})}
        when = datetime.fromisoformat(tagger["date"]).timestamp() if tagger.get("date") else time.time()
        message = (self.body.get("message") or "").rstrip("\n")
        text = f"object {target}\ntype {kind}\ntag {name}\n"
        text += f"tagger {tagger['name']} <{tagger['email']}> {int(when)} +0000\n\n{message}\n"
        return 201, self.gh.tag_json(self.gh.git("mktag", input=text))

    # Commits, trees and contents.

    def get_git_commit(self, sha: str):
        if self.gh.object_type(sha) != "commit":
            raise not_found()
        return self.gh.git_commit_json(sha)

    def create_commit(self):
        tree, parents = self.body.get("tree"), self.body.get("parents") or []
        if not (is_sha(tree) and self.gh.object_type(tree) == "tree"):
            raise GitHubError(422, "Tree SHA does not exist")
        if not all(is_sha(parent) and self.gh.object_type(parent) == "commit" for parent in parents):
            raise GitHubError(422, "Parent SHA does not exist or is not a commit object")
        author = {**self.me(), **(self.body.get("author") or {})}
        committer = {**author, **(self.body.get("committer") or {})}
        sha = self.gh.commit_tree(tree, parents, self.body.get("message") or "", author, committer)
        return 201, self.gh.git_commit_json(sha)

    def tree_json(self, sha: str, recursive: bool) -> dict:
        out = self.gh.run("ls-tree", "-z", "-l", *(["-r", "-t"] if recursive else []), sha).stdout.decode()
        records = list(filter(None, out.split("\0")))
        truncated = len(records) > self.gh.tree_limit
        entries = []
        for record in records[: self.gh.tree_limit]:
            meta, path = record.split("\t", 1)
            mode, kind, entry_sha, size = meta.split()
            entry = {"path": path, "mode": mode, "type": kind, "sha": entry_sha}
            if kind == "blob":
                entry["size"] = int(size)
            if kind != "commit":
                entry["url"] = f"{self.gh.api}/git/{kind}s/{entry_sha}"
            entries.append(entry)
        return {"sha": sha, "url": f"{self.gh.api}/git/trees/{sha}", "tree": entries, "truncated": truncated}

    def get_tree(self, sha: str):
        return self.tree_json(self.need(sha, "tree"), recursive="recursive" in self.query)

    def create_tree(self):
        gh, base = self.gh, self.body.get("base_tree")
        entries = gh.tree_entries(self.need(base, "tree")) if base else {}
        for item in self.body.get("tree") or []:
            path, mode, kind = (
                item.get("path") or "",
                item.get("mode") or "100644",
                item.get("type") or "blob",
            )
            if item.get("content") is not None:
                gh.place(entries, path, (mode, "blob", gh.write_blob(item["content"])))
            elif item.get("sha") is None:
                gh.place(entries, path, None)
            elif kind != "commit" and gh.object_type(item["sha"]) != kind:
                message = f"{item['sha']} is not a valid {kind}"
                raise GitHubError.invalid("Tree", "invalid", field="tree.sha", message=message)
            elif kind == "tree":
                gh.place(entries, path, None)
                entries.update({f"{path}/{sub}": leaf for sub, leaf in gh.tree_entries(item["sha"]).items()})
            else:
                gh.place(entries, path, (mode, kind, item["sha"]))
        return 201, self.tree_json(gh.write_tree(entries), recursive=False)

    def get_contents(self, path: str = ""):
        """A file with its content in base64, or a directory's listing."""
        gh, ref, path = self.gh, self.query.get("ref", "main"), path.strip("/")
        commit = self.need(ref)

        def listing(*args: str) -> list[dict]:
            entries = []
            for record in filter(None, gh.run("ls-tree", "-z", "-l", *args).stdout.decode().split("\0")):
                meta, name = record.split("\t", 1)
                _, kind, sha, size = meta.split()
                kind, entry_path = {"blob": "file", "tree": "dir"}.get(kind, "submodule"), name
                if args[-1] != path and path:
                    entry_path = f"{path}/{name}"
                entries.append(
                    {
                        "type": kind,
                        "name": entry_path.rsplit("/", 1)[-1],
                        "path": entry_path,
                        "sha": sha,
                        "size": int(size) if size.isdigit() else 0,
                        "url": f"{gh.api}/contents/{quote(entry_path)}?ref={ref}",
                        "html_url": f"{gh.html}/{'blob' if kind == 'file' else 'tree'}/{ref}/{entry_path}",
                        "download_url": f"{gh.html}/raw/{ref}/{entry_path}" if kind == "file" else None,
                    }
                )
            return entries

        if path:
            found = listing(commit, "--", path)
            if not found:
                raise not_found()
            if found[0]["type"] == "file":
                data = gh.run("cat-file", "blob", found[0]["sha"]).stdout
                return {**found[0], "encoding": "base64", "content": base64.encodebytes(data).decode()}
        return listing(f"{commit}:{path}")

    def get_commit(self, ref: str):
        sha = self.gh.resolve(ref)
        if sha is None:
            raise GitHubError(422, f"No commit found for SHA: {ref}")
        return self.gh.commit_json(sha, with_files=True)

    def list_commits(self):
        """The history of ``sha`` (default: the default branch), newest first, page by page."""
        shas = self.gh.rev_list(self.need(self.query.get("sha") or "main"))
        return [self.gh.commit_json(sha) for sha in self.paginate(shas)]

    def commit_pulls(self, ref: str):
        """As GitHub documents it: the merged pull request that brought a commit onto the default
        branch; for a commit that is not on the default branch, only open pull requests."""
        gh, sha = self.gh, self.need(ref)
        on_default = gh.run("merge-base", "--is-ancestor", sha, "refs/heads/main", ok=(0, 1)).returncode == 0
        found = [
            pr
            for pr in gh.pulls.values()
            if (on_default or pr["state"] == "open")
            and (sha == pr["merge_commit_sha"] or sha in gh.pull_commits(pr))
        ]
        return self.paginate([gh.pull_json(pr) for pr in found])

    def commit_check_runs(self, ref: str):
        sha, name, status = self.need(ref), self.query.get("check_name"), self.query.get("status")
        runs = [run for run in reversed(self.gh.check_runs) if run["sha"] == sha]
        runs = [run for run in runs if name in (None, run["name"]) and status in (None, run["status"])]
        if self.query.get("filter", "latest") == "latest":
            runs = [run for i, run in enumerate(runs) if run["name"] not in {r["name"] for r in runs[:i]}]
        page = self.paginate(runs)
        return {"total_count": len(runs), "check_runs": [self.gh.check_run_json(run) for run in page]}

    def combined_status(self, ref: str):
        gh, sha = self.gh, self.need(ref)
        latest = list({status["context"]: status for status in gh.statuses if status["sha"] == sha}.values())
        states = {status["state"] for status in latest}
        if states & {"failure", "error"}:
            state = "failure"
        else:
            state = "pending" if "pending" in states or not states else "success"
        return {
            "state": state,
            "sha": sha,
            "total_count": len(latest),
            "statuses": [gh.status_json(status) for status in latest],
            "repository": gh.repo_json(),
            "commit_url": f"{gh.api}/commits/{sha}",
            "url": f"{gh.api}/commits/{sha}/status",
        }

    def compare(self, base: str, head: str):
        gh = self.gh
        base_sha, head_sha = self.need(base), self.need(head)
        merge_base = gh.merge_base(base_sha, head_sha)
        if merge_base is None:
            raise not_found(f"No common ancestor between {base} and {head}.")
        ahead = gh.rev_list("--reverse", head_sha, f"^{base_sha}")
        behind = len(gh.rev_list(base_sha, f"^{head_sha}"))
        status = "identical" if not ahead and not behind else "behind" if not ahead else "ahead"
        status = "diverged" if ahead and behind else status
        page = self.paginate(ahead, default=250, maximum=1000)
        files = gh.diff_files(merge_base, head_sha) if int(self.query.get("page", 1)) <= 1 else []
        files = files[:COMPARE_FILES]  # and no word that the list was cut
        return {
            "url": f"{gh.api}/compare/{quote(base)}...{quote(head)}",
            "html_url": f"{gh.html}/compare/{base}...{head}",
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": behind,
            "total_commits": len(ahead),
            "base_commit": gh.commit_json(base_sha),
            "merge_base_commit": gh.commit_json(merge_base),
            "files": files,
            "commits": [gh.commit_json(sha) for sha in page],
        }

    # Pull requests.

    def list_pulls(self):
        state, base, head = self.query.get("state", "open"), self.query.get("base"), self.query.get("head")
        found = [
            pr
            for pr in sorted(self.gh.pulls.values(), key=lambda pr: -pr["number"])
            if state in ("all", pr["state"])
            and base in (None, pr["base"])
            and head in (None, f"{self.gh.owner}:{pr['head']}")
        ]
        return self.paginate([self.gh.pull_json(pr) for pr in found])

    def create_pull(self):
        for field in ("head", "base", "title"):
            if not self.body.get(field):
                raise GitHubError.invalid("PullRequest", "missing_field", field=field)
        body = self.body
        number = self.gh.open_pull(body["head"], body["base"], body["title"], body.get("body") or "")
        return 201, self.gh.pull_json(self.gh.pulls[number])

    def get_pull(self, number: str):
        return self.gh.pull_json(self.pull(number))

    def pull_reviews(self, number: str):
        reviews = [review for review in self.gh.reviews if review["number"] == int(number)]
        return self.paginate([self.gh.review_json(review) for review in reviews])

    def pull_files(self, number: str):
        pr = self.pull(number)
        merge_base = self.gh.merge_base(pr["base_sha"], pr["head_sha"])
        return self.paginate(self.gh.diff_files(merge_base, pr["head_sha"]))

    def pull_commits(self, number: str):
        return self.paginate([self.gh.commit_json(sha) for sha in self.gh.pull_commits(self.pull(number))])

    def is_merged(self, number: str):
        if self.pull(number)["merged_at"] is None:
            raise not_found()
        return 204, None

    def merge_pull(self, number: str):
        gh, pr = self.gh, self.pull(number)
        if pr["state"] != "open":
            raise GitHubError(405, "Pull Request is not mergeable")
        if self.body.get("sha") and self.body["sha"] != pr["head_sha"]:
            raise GitHubError(409, "Head branch was modified. Review and try the merge again.")
        tree = gh.merge_tree(pr["base_sha"], pr["head_sha"])
        if tree is None:
            raise GitHubError(405, "Pull Request is not mergeable")
        blocker = gh.merge_blocker(pr["base"], pr["head_sha"])
        if blocker:
            raise GitHubError(405, blocker)
        method = self.body.get("merge_method") or "merge"
        if method != "merge":
            raise GitHubError(405, f"{method.title()} merges are not allowed on this repository.")
        title = self.body.get("commit_title") or f"Merge pull request #{number} from {gh.owner}/{pr['head']}"
        message = self.body.get("commit_message", pr["title"])
        github = {"name": "GitHub", "email": "noreply@github.com"}
        text = f"{title}\n\n{message}" if message else title
        sha = gh.commit_tree(tree, [pr["base_sha"], pr["head_sha"]], text, self.me(), github)
        gh.git("update-ref", f"refs/heads/{pr['base']}", sha, pr["base_sha"])
        gh.verified.add(sha)
        now = iso()
        pr.update(state="closed", merged_at=now, closed_at=now, updated_at=now, merged_by=gh.login)
        pr["merge_commit_sha"] = sha
        return {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}

    # Releases.

    def find_release(self, tag: str) -> dict | None:
        return next((release for release in self.gh.releases if release["tag_name"] == tag), None)

    def list_releases(self):
        return self.paginate([self.gh.release_json(release) for release in reversed(self.gh.releases)])

    def create_release(self):
        gh, tag, draft = self.gh, self.body.get("tag_name"), bool(self.body.get("draft"))
        if not tag:
            raise GitHubError.invalid("Release", "missing_field", field="tag_name")
        if self.find_release(tag):
            raise GitHubError.invalid("Release", "already_exists", field="tag_name")
        target = self.body.get("target_commitish") or "main"
        if gh.resolve(f"refs/tags/{tag}") is None:
            sha = gh.resolve(target)
            if sha is None:
                raise GitHubError.invalid("Release", "invalid", field="target_commitish")
            if not draft:
                gh.git("update-ref", f"refs/tags/{tag}", sha, ZERO)
        now = iso()
        release = {
            "id": next(gh._ids),
            "tag_name": tag,
            "target_commitish": target,
            "name": self.body.get("name") or tag,
            "body": self.body.get("body") or "",
            "draft": draft,
            "prerelease": bool(self.body.get("prerelease")),
            "created_at": now,
            "published_at": None if draft else now,
            "login": gh.login,
        }
        gh.releases.append(release)
        return 201, gh.release_json(release)

    def release_by_tag(self, tag: str):
        release = self.find_release(tag)
        if release is None or release["draft"]:
            raise not_found()
        return self.gh.release_json(release)

    def get_release(self, release_id: str):
        release = next((release for release in self.gh.releases if release["id"] == int(release_id)), None)
        if release is None:
            raise not_found()
        return self.gh.release_json(release)

    def generate_notes(self):
        """GitHub's generated notes: the pull requests merged between the previous tag and the target."""
        gh, tag = self.gh, self.body.get("tag_name") or ""
        target = gh.resolve(f"refs/tags/{tag}") or self.need(self.body.get("target_commitish") or "main")
        previous = self.body.get("previous_tag_name")
        if previous is None:
            found = gh.run("describe", "--tags", "--abbrev=0", "--exclude", tag, target, ok=(0, 128))
            previous = found.stdout.decode().strip() or None
        shas = set(gh.rev_list(target, *([f"^{self.need(previous)}"] if previous else [])))
        merged = [pr for pr in gh.pulls.values() if pr["merge_commit_sha"] in shas]
        lines = [f"* {pr['title']} by @{pr['login']} in {gh.html}/pull/{pr['number']}\n" for pr in merged]
        changes = "## What's Changed\n" + "".join(lines) + "\n" if lines else ""
        compare = f"{gh.html}/compare/{previous}...{tag}" if previous else f"{gh.html}/commits/{tag}"
        return {"name": tag, "body": f"{changes}**Full Changelog**: {compare}"}

    # Organisations and users.

    def get_org(self, org: str):
        if org != self.gh.owner and not any(key.startswith(f"{org}/") for key in self.gh.teams):
            raise not_found()
        return self.gh.user_json(org, "Organization")

    def get_team(self, org: str, slug: str):
        if f"{org}/{slug}" not in self.gh.teams:
            raise not_found()
        return self.gh.team_json(org, slug)

    def team_members(self, org: str, slug: str):
        if f"{org}/{slug}" not in self.gh.teams:
            raise not_found()
        return self.paginate([self.gh.user_json(login) for login in self.gh.teams[f"{org}/{slug}"]])

    def get_user(self, login: str):
        return self.gh.user_json(login)

    # Actions.

    def workflow(self, key: str) -> str:
        path = self.gh.find_workflow(key)
        if path is None:
            raise not_found()
        return path

    def list_workflows(self):
        workflows = [self.gh.workflow_json(path) for path in self.gh.workflow_paths()]
        return {"total_count": len(workflows), "workflows": self.paginate(workflows)}

    def get_workflow(self, workflow: str):
        return self.gh.workflow_json(self.workflow(workflow))

    def dispatch_workflow(self, workflow: str):
        """A ``workflow_dispatch``: the ref must be a branch or tag, the workflow at that ref must take
        the event, and the inputs must be those it declares (the required ones given, choices
        among their options). 204; or 200 with the run, when asked and ``run_details`` allows."""
        gh, path, body = self.gh, self.workflow(workflow), self.body
        permitted = {"ref", "inputs"} | ({"return_run_details"} if gh.run_details else set())
        for key in body:
            if key not in permitted:
                raise GitHubError(422, f'Invalid request.\n\n"{key}" is not a permitted key.')
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise GitHubError(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        short = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
        sha = gh.resolve(f"refs/heads/{short}") or gh.resolve(f"refs/tags/{short}")
        if sha is None:
            raise GitHubError(422, f"No ref found for: {ref}")
        definition = gh.workflow_file(path, sha)
        triggers = gh.triggers(definition) if definition else {}
        if "workflow_dispatch" not in triggers:
            raise GitHubError(422, "Workflow does not have 'workflow_dispatch' trigger")
        inputs = self.dispatch_inputs((triggers["workflow_dispatch"] or {}).get("inputs") or {})
        run = gh.dispatch_run(path, short, sha, inputs)
        if not body.get("return_run_details"):
            return 204, None
        return {
            "workflow_run_id": run["id"],
            "run_url": f"{gh.api}/actions/runs/{run['id']}",
            "html_url": f"{gh.html}/actions/runs/{run['id']}",
        }

    def dispatch_inputs(self, declared: dict) -> dict[str, str]:
        """The body's inputs checked against those the workflow declares, defaults filled in."""
        given = self.body.get("inputs") or {}
        if not isinstance(given, dict):
            raise GitHubError(422, "Invalid request.\n\nFor 'properties/inputs', it is not an object.")
        unexpected = sorted(set(given) - set(declared))
        if unexpected:
            raise GitHubError(422, f"Unexpected inputs provided: {json.dumps(unexpected)}")
        inputs = {}
        for name, spec in declared.items():
            spec = spec or {}
            if name not in given:
                if spec.get("required") and spec.get("default") is None:
                    raise GitHubError(422, f"Required input '{name}' not provided")
                inputs[name] = str(spec.get("default") or "")
                continue
            value = given[name]
            if not isinstance(value, str | int | float | bool):
                raise GitHubError(422, f"Invalid value for input '{name}'")
            if spec.get("type") == "choice" and str(value) not in [str(o) for o in spec.get("options") or []]:
                message = f"Provided value '{value}' for input '{name}' not in the list of allowed values"
                raise GitHubError(422, message)
            inputs[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return inputs

    def workflow_runs(self, workflow: str):
        """The workflow's runs, newest first, filtered by ``event``, ``branch``, ``status`` (a status
        or a conclusion), ``head_sha`` and ``created`` (GitHub's search syntax for times)."""
        gh, path, query = self.gh, self.workflow(workflow), self.query
        created = self.created_filter(query["created"]) if "created" in query else None
        runs = [
            run
            for run in reversed(gh.runs)
            if run["path"] == path
            and run["listed"]
            and query.get("event") in (None, "workflow_dispatch")
            and query.get("branch") in (None, run["ref"])
            and query.get("status") in (None, run["status"], run["conclusion"])
            and query.get("head_sha") in (None, run["sha"])
            and (created is None or created(int(run["created"])))
        ]
        return {"total_count": len(runs), "workflow_runs": [gh.run_json(run) for run in self.paginate(runs)]}

    @staticmethod
    def created_filter(value: str):
        """A test of a run's creation time (epoch seconds): ``>=t``, ``>t``, ``<=t``, ``<t``, ``a..b``,
        or a time or a day alone, as GitHub's search syntax writes them."""

        def moment(text: str, *, end: bool = False) -> float:
            text = text.strip().replace(" ", "+")  # a "+" of a zone offset, unquoted as a space
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                day = datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
                return day + 86399 if end else day
            try:
                at = datetime.fromisoformat(text)
            except ValueError:
                raise GitHubError(422, f"Invalid created filter: {value}") from None
            return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()

        for sign, test in (
            (">=", float.__ge__),
            ("<=", float.__le__),
            (">", float.__gt__),
            ("<", float.__lt__),
        ):
            if value.startswith(sign):
                bound = moment(value[len(sign) :], end=sign in ("<=", ">"))
                return lambda at: test(float(at), bound)
        if ".." in value:
            low, high = value.split("..", 1)
            start, end = moment(low), moment(high, end=True)
            return lambda at: start <= at <= end
        start, end = moment(value), moment(value, end=True)
        return lambda at: start <= at <= end

    def get_run(self, run_id: str):
        run = next((run for run in self.gh.runs if run["id"] == int(run_id)), None)
        if run is None:
            raise not_found()
        return self.gh.run_json(run)
