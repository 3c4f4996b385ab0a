"""What the CI agents would act on in a log buildctl wrote: a model of their parsers, written from
their sources independently of buildctl's neutraliser (so a test of one against the other means
something).

- Azure Pipelines agent (``Agent.Worker/Command.cs`` ``TryParse``): ``##vso[`` anywhere in a line;
  the web log's formatting commands ``##[group]``, ``##[error]``, ... likewise.
- GitHub Actions runner (``ActionCommandManager``): ``::name ...::`` at the start of a line after
  leading white space (``TryParseV2`` trims), and the legacy ``##[name ...]`` anywhere (``TryParse``).

Both split the stream with .NET ``ReadLine``: ``\\r``, ``\\n`` and ``\\r\\n`` end a line.
"""

from __future__ import annotations

import re

# Payloads: each would set a variable / output / step result named "pwned" if it stayed live.
AZURE = "##vso[task.setvariable variable=pwned]1"
AZURE_FORMAT = "##[error]pwned"
GITHUB = "::set-output name=pwned::1"
GITHUB_ENV = "::add-mask::pwned"
ALL = (AZURE, AZURE_FORMAT, GITHUB, GITHUB_ENV)
ENVIRONMENTS = {"azure": {"TF_BUILD": "True"}, "github": {"GITHUB_ACTIONS": "true"}}


def lines(output: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", output)


def azure_commands(output: str) -> list[str]:
    return [line for line in lines(output) if "##vso[" in line.lower() or "##[" in line]


def github_commands(output: str) -> list[str]:
    return [line for line in lines(output) if line.lstrip().startswith("::") or "##[" in line]


def live_commands(output: str) -> list[str]:
    """Every line either agent would act on."""
    return sorted(set(azure_commands(output)) | set(github_commands(output)))


def injected(output: str) -> list[str]:
    """The live command lines that carry a payload (``pwned``)."""
    return [line for line in live_commands(output) if "pwned" in line.lower()]
