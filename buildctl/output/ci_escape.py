"""Text that goes into CI logs: escaped inside a logging command, defused as a plain line.

Every piece of free text (check details, build errors, paths, URLs) comes from images, build logs or
configuration, so it is untrusted: inside a command it is escaped the way the platforms' own
libraries do, so it cannot end the command or start a new line; printed as a plain log line it is
flattened to one line and its command markers are escaped (``ci_stream``: the Azure agent acts on
``##vso[`` *anywhere* in a line, GitHub's runner on ``::`` at the start of a line and on ``##[``).
"""

from __future__ import annotations

from typing import Any

from buildctl.output.ci_stream import neutralise, neutralise_line
from buildctl.output.visible import visible
from buildctl.redaction import redact_url


def escape_azure_data(text: str) -> str:
    """The message part of ``##vso[...]message``, as azure-pipelines-task-lib escapes it.

    https://github.com/microsoft/azure-pipelines-task-lib/blob/master/node/taskcommand.ts
    (``%AZP25``, not ``%25``: the agent decodes ``%AZP25`` last, so ``%0A`` typed by a user
    survives as text).
    """
    return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def escape_azure_property(text: str) -> str:
    """A property value in ``##vso[area.event key=value;...]``: also ``]`` and ``;``."""
    return escape_azure_data(text).replace("]", "%5D").replace(";", "%3B")


def escape_github_data(text: str) -> str:
    """The message of ``::command::message`` (actions/toolkit packages/core/src/command.ts)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_github_property(text: str) -> str:
    """A property value in ``::command key=value,...::``: also ``:`` and ``,``."""
    return escape_github_data(text).replace(":", "%3A").replace(",", "%2C")


def defuse(text: Any) -> str:
    """Untrusted text without URL userinfo or command markers (line breaks kept; markers escaped
    as ``ci_stream.neutralise`` does for every line buildctl writes), controls shown as escapes
    (these lines reach the log past the console: ESC would colour or hide text in the log viewer)."""
    return neutralise(visible(redact_url(str(text))), line_start=False)


def plain(text: Any) -> str:
    """Untrusted text as one log line of no meaning to either CI, to put after text of ours (the
    writer breaks a ``::`` at the start of a whole line)."""
    return neutralise_line(visible(" ".join(redact_url(str(text)).splitlines())), line_start=False)
