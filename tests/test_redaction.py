"""buildctl.redaction: what counts as a URL, which userinfo is a credential, and that redaction
removes exactly the credential — the host, port, path, query and the text around stay readable."""

from __future__ import annotations

import pytest

from buildctl.gitops.git import TOKEN_VARIABLES
from buildctl.redaction import has_credentials, is_secret_variable, is_url, redact_url
from buildctl.registry.credentials import PASSWORD_ENV

TOKEN = "ghp_S3cr3tT0kenValue0123456789abcdef"
SHA = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("text", "expected"), [
    (f"https://user:{TOKEN}@github.com/org/repo.git", "https://github.com/org/repo.git"),
    (f"https://{TOKEN}@github.com/org/repo.git", "https://github.com/org/repo.git"),  # token as user
    (f"HTTPS://x-access-token:{TOKEN}@GitHub.com/Org/Repo", "HTTPS://GitHub.com/Org/Repo"),  # any case
    (f"http://u:{TOKEN}@gitea.local:3000/o/r.git", "http://gitea.local:3000/o/r.git"),  # the port stays
    (f"https://u:{TOKEN}@[::1]:8443/o/r", "https://[::1]:8443/o/r"),
    (f"git+https://{TOKEN}@host.io/o/r", "git+https://host.io/o/r"),
    (f"https://org:{TOKEN}@dev.azure.com/org/p/_git/r?path=/a&version=GBmain#L3",
     "https://dev.azure.com/org/p/_git/r?path=/a&version=GBmain#L3"),  # query and fragment stay
    ("https://u:p%40ss%2Fw@host.io/r", "https://host.io/r"),  # percent-encoded '@' and '/'
    ("https://u:@host.io/r", "https://host.io/r"),  # an empty password is still userinfo
    ("ssh://git@host.io/o/r.git", "ssh://host.io/o/r.git"),  # every URL's userinfo goes
    (f"ssh://git:{TOKEN}@host.io:2222/o/r", "ssh://host.io:2222/o/r"),
    (f"u:{TOKEN}@host.io:org/r.git", "u:***@host.io:org/r.git"),  # scp-like: the password masked
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),  # an ssh login name stays
])
def test_redact_removes_the_userinfo(text: str, expected: str) -> None:
    assert redact_url(text) == expected


@pytest.mark.parametrize("text", [
    "https://github.com/org/repo.git",
    "https://host.io/o/r?ref=main&tokens=2",  # no userinfo, no credential parameter: nothing to remove
    "https://host.io/users/a@b.example/r.git",  # an '@' in the path is not userinfo
    "https://host.io/r#who@where",  # nor in the fragment after a path
    "/srv/gitops.git", "./relative:odd/path", "file:///srv/gitops.git",
    "commit by dev@example.com: fix the chart",  # an address in prose
    f"127.0.0.1:5000/voting-app/vote:42@{SHA}",  # an image reference with a digest
    f"myacr.azurecr.io/team/app@{SHA}",
    "",
])
def test_redact_leaves_what_is_not_a_credential(text: str) -> None:
    assert redact_url(text) == text


def test_every_url_in_free_text_is_redacted() -> None:
    stderr = (f"Cloning into 'gitops'...\n"
              f"fatal: unable to access 'https://x-access-token:{TOKEN}@github.com/org/gitops.git/': 403\n"
              f"remote: see https://{TOKEN}@mirror.example/o/r and (u:{TOKEN}@host.io:org/r)\n"
              f"hint: push to ssh://git@host.io/o/r\n")
    out = redact_url(stderr)
    assert TOKEN not in out
    assert out == ("Cloning into 'gitops'...\n"
                   "fatal: unable to access 'https://github.com/org/gitops.git/': 403\n"
                   "remote: see https://mirror.example/o/r and (u:***@host.io:org/r)\n"
                   "hint: push to ssh://host.io/o/r\n")


@pytest.mark.parametrize("text", [
    f"https://u:{TOKEN}@h.io/x https://h2.io/y",
    f"u:{TOKEN}@host.io:org/r.git",
    f"see https://{TOKEN}@h.io/x, then u:{TOKEN}@h.io:x",
])
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_url(text)
    assert redact_url(once) == once
    assert TOKEN not in once


@pytest.mark.parametrize(("url", "secret"), [
    (f"https://user:{TOKEN}@github.com/o/r", True),
    (f"https://{TOKEN}@github.com/o/r", True),  # GitHub and Azure DevOps take a token as the user
    (f"HTTP://{TOKEN}@host.io/o/r", True),
    (f"git+https://{TOKEN}@host.io/o/r", True),
    (f"ssh://git:{TOKEN}@host.io/o/r", True),  # a password, even on ssh
    (f"u:{TOKEN}@host.io:org/r.git", True),  # scp-like with a password
    ("ssh://git@host.io/o/r.git", False),  # an ssh login name
    ("SSH://git@host.io/o/r.git", False),
    ("git+ssh://git@host.io/o/r.git", False),
    ("git@github.com:org/repo.git", False),
    ("https://github.com/org/repo.git", False),
    ("https://host.io/users/a@b/r.git", False),  # '@' in the path
    ("https://host.io:8443/o/r", False),  # a port is not a password
    ("file:///srv/gitops.git", False),
    ("/srv/gitops.git", False),
    ("host.io:org/r.git", False),
])
def test_has_credentials(url: str, secret: bool) -> None:
    assert has_credentials(url) is secret


@pytest.mark.parametrize(("text", "url"), [
    ("https://github.com/o/r", True), ("HTTPS://github.com/o/r", True), ("file:///srv/g.git", True),
    ("ssh://git@h/o/r", True), ("git+ssh://h/o/r", True), ("git@github.com:org/r.git", True),
    ("host.io:org/r.git", True), ("u:pw@host.io:org/r", True),
    ("/srv/gitops.git", False), ("./a:b", False), ("../a:b", False), (".git:x", False),
    ("dir/a:b", False),  # a slash before the first colon: a path, as git decides
    ("relative/dir", False), ("gitops", False), ("", False), ("1http://x", False),
])
def test_is_url_decides_as_git_does(text: str, url: bool) -> None:
    assert is_url(text) is url


def test_no_part_of_a_password_with_an_at_sign_is_shown() -> None:
    out = redact_url("https://user:Secret@Part2@github.com/org/repo.git")
    assert "Part2" not in out and "Secret" not in out


def test_the_authority_ends_at_a_query_or_fragment() -> None:
    assert redact_url("https://host.io?login=me@corp.example") == "https://host.io?login=me@corp.example"
    assert not has_credentials("https://host.io#me@corp.example")


@pytest.mark.parametrize(("text", "expected"), [
    ("https://host/x.git?access_token=abc", "https://host/x.git?access_token=***"),
    ("https://gitlab.example/o/r.git?private_token=glpat-1&ref=main", "https://gitlab.example/o/r.git?private_token=***&ref=main"),
    ("fatal: 'https://acct.blob.core.windows.net/c/x?sv=2022&SIG=abc%2Bd#f' failed",
     "fatal: 'https://acct.blob.core.windows.net/c/x?sv=2022&SIG=***#f' failed"),
    ("https://u:p@h/x?token=t", "https://h/x?token=***"),
])
def test_credential_query_parameters_are_masked_and_count_as_credentials(text: str, expected: str) -> None:
    assert redact_url(text) == expected
    assert redact_url(expected) == expected  # idempotent
    url = text.split("'")[1] if "'" in text else text
    assert has_credentials(url)


# --------------------------------------------------------------------------- secret variables (issue #24)

@pytest.mark.parametrize("name", ["BUILDCTL_REGISTRY_PASSWORD", "BUILDCTL_GIT_TOKEN", "SYSTEM_ACCESSTOKEN",
                                  "GITHUB_TOKEN", "COSIGN_PASSWORD", "REGISTRYPASSWORD", "registry_password",
                                  "NPM_TOKEN", "AWS_SECRET_ACCESS_KEY", "ARM_CLIENT_SECRET", "SIGNING_KEY", "ADO_PAT",
                                  "DB_PWD", "GPG_PASSPHRASE", "DOCKER_CREDENTIALS", "OPENAI_APIKEY", "MY_PASSWD"])
def test_names_that_hold_secrets(name):
    assert is_secret_variable(name)


@pytest.mark.parametrize("name", ["BUILD_BUILDID", "BUILDCTL_TAG", "BUILDCTL_REGISTRY", "BUILDCTL_REGISTRY_USERNAME",
                                  "MONKEY", "KEY_VAULT_NAME", "PWD", "OLDPWD", "PATH", "HOME", "TOKEN_URL",
                                  "BUILDCTL_GITOPS_REPO", "TARGETARCH", "SPAT"])
def test_names_that_do_not(name):
    assert not is_secret_variable(name)


def test_every_variable_buildctl_reads_a_secret_from_is_one():
    for name in (*TOKEN_VARIABLES, PASSWORD_ENV, "COSIGN_PASSWORD"):
        assert is_secret_variable(name), name
