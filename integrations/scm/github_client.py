"""The connection to a repository on GitHub or GitHub Enterprise, and how what PyGithub and the
network raise becomes an ScmError in words (with the rate limit's end)."""

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from integrations.scm.base import DEFAULT_IDENTITY, Identity, ScmError

if TYPE_CHECKING:
    from github import GithubException

# GitHub.com's API; GitHub Enterprise Server answers at https://HOST/api/v3.
GITHUB_API = "https://api.github.com"

Client = TypeVar("Client", bound="GitHubClient")
P = ParamSpec("P")
R = TypeVar("R")


def speaks(
    action: str, permission: str
) -> Callable[[Callable[Concatenate[Client, P], R]], Callable[Concatenate[Client, P], R]]:
    """Turns what PyGithub and the network raise during `action` into an ScmError in words."""

    def wrap(method: Callable[Concatenate[Client, P], R]) -> Callable[Concatenate[Client, P], R]:
        @functools.wraps(method)
        def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
            from github import GithubException
            from requests import RequestException

            try:
                return method(self, *args, **kwargs)
            except GithubException as error:
                raise self._refusal(error, action, permission) from None
            except RequestException as error:
                raise ScmError(
                    f"GitHub could not be reached at {self.api_url} to {action} ({type(error).__name__}); "
                    "the step is tried again.",
                    kind="network",
                ) from None

        return call

    return wrap


class GitHubClient:
    """A repository on GitHub or GitHub Enterprise, through PyGithub. PyGithub's own retries are
    off: a rate limit or an outage is an ScmError at once (with the reset time), and the task
    that asked reschedules itself instead of sleeping in a worker."""

    def __init__(
        self,
        full_name: str,
        *,
        token: str,
        api_url: str = GITHUB_API,
        identity: Identity = DEFAULT_IDENTITY,
        timeout: int = 15,
        pause_between_writes: float | None = 1.0,  # GitHub asks for a second between writes
    ) -> None:
        from github import Auth, Github

        self.full_name, self.api_url, self.identity = full_name, api_url.rstrip("/"), identity
        self.owner = full_name.split("/")[0]
        self._github = Github(
            auth=Auth.Token(token),
            base_url=self.api_url,
            timeout=timeout,
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=pause_between_writes,
            lazy=True,  # objects are fetched when first read, inside the step that reads them
            per_page=100,  # GitHub's largest page: fewer requests against the rate limit
        )
        self._repo = self._github.get_repo(full_name)

    def _refusal(self, error: "GithubException", action: str, permission: str) -> ScmError:
        from github import BadCredentialsException, RateLimitExceededException

        headers = {k.lower(): str(v) for k, v in (error.headers or {}).items()}
        message = (error.data or {}).get("message", "") if isinstance(error.data, dict) else str(error.data)
        if (
            isinstance(error, RateLimitExceededException)
            or error.status == 429
            or (
                error.status == 403
                and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)
            )
        ):
            retry_at = _rate_limit_ends(headers)
            return ScmError(
                f"GitHub's rate limit for this token is used up until {retry_at:%H:%M:%S} UTC; "
                f"the step to {action} waits until then.",
                kind="rate_limit",
                retry_at=retry_at,
            )
        if isinstance(error, BadCredentialsException) or error.status == 401:
            return ScmError(
                "GitHub refused the token (401 Bad credentials): it is wrong, expired or revoked. "
                "Set a valid GITHUB_TOKEN.",
                kind="token",
            )
        if error.status == 403:
            needed = headers.get("x-accepted-github-permissions") or permission
            return ScmError(
                f"The GitHub token may not {action} in {self.full_name} ({message or 'forbidden'}): "
                f"give it the {needed} permission.",
                kind="token",
            )
        if error.status == 404:
            return ScmError(
                f"GitHub shows nothing to {action} in {self.full_name}: check GITHUB_REPOSITORY and that "
                "the token can read the repository.",
                kind="missing",
            )
        if error.status >= 500:
            return ScmError(
                f"GitHub answered {error.status} when asked to {action}; the step is tried again.",
                kind="network",
            )
        return ScmError(f"GitHub refused to {action}: {message or error.status}.", kind="conflict")

    # Reading.


def _rate_limit_ends(headers: dict[str, str]) -> datetime:
    """When a rate-limited step may run again, as GitHub documents it: after `Retry-After`
    seconds (a secondary limit), else at `X-RateLimit-Reset` once `X-RateLimit-Remaining` is 0,
    else in a minute; never sooner than a second from now."""
    now = datetime.now(tz=UTC)
    after, reset = headers.get("retry-after", "").strip(), headers.get("x-ratelimit-reset", "").strip()
    at = None
    if re.fullmatch(r"[0-9]{1,9}", after):
        at = now + timedelta(seconds=int(after))
    elif after:
        at = _http_date(after)  # the other form HTTP allows
    if at is None and headers.get("x-ratelimit-remaining") == "0" and re.fullmatch(r"[0-9]{1,12}", reset):
        at = datetime.fromtimestamp(int(reset), tz=UTC)
    return max(at or now + timedelta(seconds=60), now + timedelta(seconds=1))


def _http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
