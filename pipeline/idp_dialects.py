"""Which IdP sent a SCIM request, named from its User-Agent (pure: no I/O).

Okta sends `Okta SCIM Client 1.0.0`; Microsoft Entra ID's provisioning service names itself
`Microsoft.Identity...`, `Azure AD ...` or `Microsoft ... Provisioning`; Google Workspace and
OneLogin name themselves. Anything else is shown as sent, truncated.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import re

OKTA, ENTRA, GOOGLE, ONELOGIN = "Okta", "Microsoft Entra ID", "Google Workspace", "OneLogin"
RAW_AGENT_LENGTH = 80

_KNOWN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bokta\b", re.IGNORECASE), OKTA),
    (re.compile(r"microsoft\.identity|azure\s*ad|\bentra\b|microsoft\b.*\bprovisioning",
                re.IGNORECASE), ENTRA),
    (re.compile(r"\bgoogle", re.IGNORECASE), GOOGLE),
    (re.compile(r"\bonelogin\b", re.IGNORECASE), ONELOGIN),
)


def dialect_of(user_agent: str | None) -> str | None:
    """The IdP's name, the raw agent (printable, at most RAW_AGENT_LENGTH characters), or
    None when the request named no agent."""
    if not user_agent or not user_agent.strip():
        return None
    for pattern, name in _KNOWN:
        if pattern.search(user_agent):
            return name
    printable = "".join(c if c.isprintable() else "?" for c in user_agent.strip())
    return printable[:RAW_AGENT_LENGTH]
