"""The system ``git`` executable: commands run without prompts, tokens only in the
environment (never on a command line, in a URL git stores, or in a message).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit

from ...exceptions import BackendError, FlowNotFoundError
from ...secrets import redact_urls

GIT_TIMEOUT = 300
"""Seconds one git command may take (a clone of a large repository is one command)."""

_HTTP_STATUS = re.compile(r"The requested URL returned error: (\d{3})")
_AUTH_FAILED = re.compile(
    r"Authentication failed|could not read Username|HTTP Basic: Access denied|"
    # \b: an HTTP status, not three digits of a SHA that git quotes ("not our ref ...").
    r"Permission denied \(publickey|\b403\b|401 Unauthorized|terminal prompts disabled",
    re.I,
)
_UNREACHABLE = re.compile(
    r"Could not resolve host|Connection refused|Connection timed out|"
    r"unable to access|Could not read from remote repository|Network is unreachable",
    re.I,
)
_MISSING_REPO = re.compile(r"not found|does not appear to be a git repository|No such", re.I)


REMOTE = "prefect-storage"
"""The remote name git is given; its URL travels in the environment, never in argv."""


class GitError(Exception):
    """git failed: what it said (URLs redacted), and which kind of failure that is.

    ``kind`` is ``tls``, ``auth``, ``missing`` (no such repository or commit),
    ``unreachable`` or ``other``; ``status`` is the HTTP status git quoted, if any.
    """

    def __init__(self, stderr: str) -> None:
        stderr = redact_urls(stderr)
        lines = stderr.strip().splitlines()
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
        self.detail = " ".join(fatal or lines[-2:])[:300]
        quoted = _HTTP_STATUS.search(stderr)
        self.status = int(quoted.group(1)) if quoted else None
        if "certificate" in stderr.lower() or "SSL" in stderr:
            self.kind = "tls"
        elif _AUTH_FAILED.search(stderr):
            self.kind = "auth"
        elif _UNREACHABLE.search(stderr) and not _MISSING_REPO.search(stderr):
            self.kind = "unreachable"
        elif _MISSING_REPO.search(stderr) or "not our ref" in stderr:
            self.kind = "missing"
        else:
            self.kind = "other"
        super().__init__(self.detail)


def split_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without its secret part, and the userinfo (``user:token``) it carried.

    HTTP(S) userinfo moves out of the URL (it is sent as a header). For every other
    scheme (``ssh://user:token@``, ``git+ssh://``, ``git://``) git cannot use a password:
    it would pass ``user:token`` to ``ssh`` as the user name, on a command line. So
    the URL keeps only the user name, and the dropped userinfo is returned too.
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    if parts.scheme in ("http", "https"):
        return urlunsplit(parts._replace(netloc=host)), userinfo
    user, has_password, _ = userinfo.partition(":")
    if not has_password:
        return url, None
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), userinfo


def auth_header(userinfo: str) -> str:
    """An HTTP Basic ``Authorization`` header for ``user:token`` (or a bare token)."""
    if ":" not in userinfo:
        userinfo += ":"
    return "Authorization: Basic " + base64.b64encode(userinfo.encode()).decode()


class GitRunner:
    """Runs git against one remote, with an optional HTTP auth header.

    A failing command raises :class:`GitError`; the transport words it.
    """

    def __init__(self, url: str, header: str | None = None) -> None:
        if shutil.which("git") is None:
            raise BackendError("Git storage needs the `git` executable; install git.")
        self.url = url
        self.display_url = redact_urls(url)
        """The URL for messages: query tokens (``?private_token=``) masked."""
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="", SSH_ASKPASS="")
        ssh = env.get("GIT_SSH_COMMAND") or "ssh"
        if "BatchMode" not in ssh:
            ssh += " -o BatchMode=yes"  # a host-key or passphrase prompt must fail, not hang
        env["GIT_SSH_COMMAND"] = ssh
        # Passed as config through the environment: invisible to `ps`, never stored.
        config = {f"remote.{REMOTE}.url": url}
        if header:
            config["http.extraHeader"] = header
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
        for key, value in config.items():
            env[f"GIT_CONFIG_KEY_{count}"], env[f"GIT_CONFIG_VALUE_{count}"] = key, value
            count += 1
        env["GIT_CONFIG_COUNT"] = str(count)
        self.env = env

    def run(self, *args: str, cwd: str | None = None) -> str:
        """git's output; :class:`GitError` when it fails (``TimeoutExpired`` when it hangs)."""
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise GitError(done.stderr)
        return done.stdout

    def ls_remote(self, *refs: str) -> dict[str, str]:
        """ref name -> SHA for ``refs`` (peeled tags appear as ``name^{}``)."""
        out = self.run("ls-remote", "--end-of-options", REMOTE, *refs)
        found = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            found[name] = sha
        return found

    def checkout(self, sha: str, directory: str, depth: int | None) -> None:
        """Fetch exactly commit ``sha`` into a fresh repository at ``directory``."""
        self.run("init", "-q", directory)
        fetch = ["fetch", "-q", "--no-tags"]
        if depth:
            fetch.append(f"--depth={int(depth)}")
        try:
            self.run(*fetch, "--end-of-options", REMOTE, sha, cwd=directory)
        except GitError as exc:
            if exc.kind != "missing":
                raise
            raise FlowNotFoundError(
                f"Commit {sha} is not in {self.display_url} any more (force-pushed away or "
                "deleted); re-register the flow from a commit that exists."
            ) from None
        # FETCH_HEAD names the URL; git drops its userinfo but keeps a query token.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, ".git", "FETCH_HEAD"))
        self.run("checkout", "-q", "--detach", sha, cwd=directory)
