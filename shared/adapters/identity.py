"""Who runs the `tunedrop` command: the operator recorded with each action (cancel, retry, retune).

The first source that names someone wins:

1. Application Default Credentials (``google.auth.default``):
   - a service account's email (a key file, attached or impersonated credentials: ``service_account_email``,
     known for Compute Engine credentials only after a refresh);
   - for user credentials (``gcloud auth application-default login``), the email Google's token-info endpoint
     gives for the access token (that login grants the userinfo.email scope), else the account gcloud wrote
     into the credentials file (``google.oauth2.credentials.Credentials.account``).
2. TUNEDROP_OPERATOR, as the caller declares it: for the local stack, whose emulators take anonymous credentials.
   It is recorded as ``<name> (TUNEDROP_OPERATOR)``, so a declared name is never taken for a verified one.

When neither names anyone the action is refused (OperatorUnknown): never recorded as anonymous.

Sources, read 2026-11-30: google-auth 2.63.0 (``google/auth/_default.py``; ``google/oauth2/credentials.py``: the
``account`` property and ``_GOOGLE_OAUTH2_TOKEN_INFO_ENDPOINT``); the token-info endpoint's fields (``email``,
``email_verified``): https://developers.google.com/identity/sign-in/web/backend-auth and
https://cloud.google.com/nodejs/docs/reference/google-auth-library/latest/google-auth-library/tokeninfo
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from shared import logs
from shared.errors import ConfigError

DECLARED_VARIABLE: Final = "TUNEDROP_OPERATOR"
TOKEN_INFO_URL: Final = "https://oauth2.googleapis.com/tokeninfo"
SCOPES: Final = ("https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email")
_EMAIL: Final = re.compile(r"\A[^@\s]+@[^@\s]+\Z")
_TOKEN_INFO_TIMEOUT_SECONDS: Final = 10

HOW_TO_NAME_YOURSELF: Final = (
    "operator actions are recorded with who asked, and nobody could be named: no Google credentials name you "
    f"and {DECLARED_VARIABLE} is not set. Run `gcloud auth application-default login` (or use a service "
    f"account's credentials), or, on the local stack, set {DECLARED_VARIABLE}=you@example.com."
)


class OperatorUnknown(ConfigError):
    """Nobody could be named as the caller: the operator action is refused."""


@dataclass(frozen=True)
class Operator:
    name: str  # an email address, or the declared name
    source: str  # how it was established, e.g. "service account credentials"
    verified: bool  # False: only declared (TUNEDROP_OPERATOR)

    @property
    def actor(self) -> str:
        """What the job's or policies' history records."""
        return self.name if self.verified else f"{self.name} ({DECLARED_VARIABLE})"


class OperatorIdentity(abc.ABC):
    """The port: who is asking."""

    @abc.abstractmethod
    def current(self) -> Operator:
        """The caller; OperatorUnknown when nobody can be named."""


class FixedOperator(OperatorIdentity):
    """Always the same operator (tests; a caller that established the identity itself)."""

    def __init__(self, operator: Operator) -> None:
        self._operator = operator

    def current(self) -> Operator:
        return self._operator


class DeclaredOperator(OperatorIdentity):
    """TUNEDROP_OPERATOR alone: on the local stack the emulators take anonymous credentials, so none name anyone."""

    def __init__(self, declared: str) -> None:
        self._declared = declared.strip()

    def current(self) -> Operator:
        if not self._declared:
            raise OperatorUnknown(HOW_TO_NAME_YOURSELF)
        return Operator(self._declared, DECLARED_VARIABLE, verified=False)


Credentials = Any  # google.auth.credentials.Credentials; typed loosely, as google-auth ships no type hints
CredentialsLoader = Callable[[], Credentials]
TokenEmail = Callable[[str], str]


def default_credentials() -> Credentials:
    """Application Default Credentials; google.auth's DefaultCredentialsError when there are none."""
    import google.auth

    credentials, _ = google.auth.default(scopes=list(SCOPES))
    return credentials


def _transport() -> Any:
    from google.auth.transport.requests import Request

    return Request()


def token_info_email(token: str) -> str:
    """The verified email Google's token-info endpoint gives for an access token ("" when it gives none). The
    token goes in a form body, not the URL, so it is not written to any request log."""
    response = _transport()(
        url=TOKEN_INFO_URL,
        method="POST",
        body=urlencode({"access_token": token}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=_TOKEN_INFO_TIMEOUT_SECONDS,
    )
    if response.status != 200:
        return ""
    try:
        info = json.loads(response.data)
    except ValueError:
        return ""
    verified = isinstance(info, dict) and info.get("email_verified") in (True, "true")
    return str(info.get("email") or "") if verified else ""


class GoogleOperatorIdentity(OperatorIdentity):
    """Application Default Credentials first, then TUNEDROP_OPERATOR (see the module docstring)."""

    def __init__(
        self,
        declared: str,
        *,
        load: CredentialsLoader = default_credentials,
        token_email: TokenEmail = token_info_email,
        refresh: Callable[[Credentials], None] | None = None,
    ) -> None:
        self._declared = DeclaredOperator(declared)
        self._load = load
        self._token_email = token_email
        self._refresh = refresh or (lambda credentials: credentials.refresh(_transport()))

    def current(self) -> Operator:
        named = self._from_credentials()
        return named if named is not None else self._declared.current()

    def _from_credentials(self) -> Operator | None:
        from google.auth.exceptions import GoogleAuthError

        try:
            credentials = self._load()
            return self._named_by(credentials)
        except GoogleAuthError as exc:
            # No credentials, or they cannot be refreshed (offline, revoked): the declared name is the fallback.
            logs.info("no operator named by Google credentials", error=str(exc))
            return None

    def _named_by(self, credentials: Credentials) -> Operator | None:
        if not _service_account(credentials) and not getattr(credentials, "valid", False):
            # Compute Engine credentials name their account ("default" until then), and user credentials carry an
            # access token, only after a refresh.
            self._refresh(credentials)
        email = _service_account(credentials)
        if email:
            return Operator(email, "service account credentials", verified=True)
        email = self._token_email(credentials.token) if getattr(credentials, "token", None) else ""
        if _EMAIL.match(email):
            return Operator(email, "user credentials (token info)", verified=True)
        account = str(getattr(credentials, "account", "") or "")
        if _EMAIL.match(account):
            return Operator(account, "user credentials (gcloud account)", verified=True)
        return None


def _service_account(credentials: Credentials) -> str:
    email = str(getattr(credentials, "service_account_email", "") or "")
    return email if _EMAIL.match(email) else ""


def operator_identity(declared: str, *, emulated: bool) -> OperatorIdentity:
    """The identity the composition root wires: TUNEDROP_OPERATOR alone against emulators, else credentials first."""
    return DeclaredOperator(declared) if emulated else GoogleOperatorIdentity(declared)
