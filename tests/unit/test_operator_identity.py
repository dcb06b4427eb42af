"""Who runs the `tunedrop` command: named by Google credentials, else by TUNEDROP_OPERATOR, else refused."""

from __future__ import annotations

from typing import Any

import google.oauth2.credentials
import pytest
from google.auth.exceptions import DefaultCredentialsError, RefreshError

from shared.adapters import identity as identity_module
from shared.adapters.identity import (
    DeclaredOperator,
    GoogleOperatorIdentity,
    Operator,
    OperatorUnknown,
    operator_identity,
)
from shared.errors import ConfigError


class ServiceAccountCredentials:
    """What google-auth's service-account, impersonated and Compute Engine credentials have in common here."""

    def __init__(self, email: str, *, email_after_refresh: str = "") -> None:
        self.service_account_email = email
        self.token: str | None = None
        self.valid = False
        self._email_after_refresh = email_after_refresh
        self.refreshes = 0

    def refresh(self) -> None:
        self.refreshes += 1
        self.token, self.valid = "access-token", True
        if self._email_after_refresh:
            self.service_account_email = self._email_after_refresh


def user_credentials(account: str = "") -> Any:
    """User credentials as `gcloud auth application-default login` leaves them: no access token until refreshed."""
    return google.oauth2.credentials.Credentials(token=None, account=account)


def refreshed(credentials: Any) -> None:
    """A refresh without the network: an access token, valid for an hour."""
    if isinstance(credentials, ServiceAccountCredentials):
        credentials.refresh()
        return
    credentials.token = "access-token"


def identity(
    credentials: Any, *, declared: str = "", token_emails: dict[str, str] | None = None
) -> GoogleOperatorIdentity:
    def load() -> Any:
        if isinstance(credentials, Exception):
            raise credentials
        return credentials

    def token_email(token: str) -> str:
        return (token_emails or {}).get(token, "")

    return GoogleOperatorIdentity(declared, load=load, token_email=token_email, refresh=refreshed)


def test_a_service_account_is_named_by_its_email_without_a_refresh() -> None:
    credentials = ServiceAccountCredentials("deployer@project.iam.gserviceaccount.com")
    operator = identity(credentials, declared="someone else").current()
    assert operator == Operator("deployer@project.iam.gserviceaccount.com", "service account credentials", True)
    assert operator.actor == "deployer@project.iam.gserviceaccount.com"
    assert credentials.refreshes == 0


def test_compute_engine_credentials_name_their_account_after_a_refresh() -> None:
    credentials = ServiceAccountCredentials("default", email_after_refresh="vm@project.iam.gserviceaccount.com")
    assert identity(credentials).current().name == "vm@project.iam.gserviceaccount.com"
    assert credentials.refreshes == 1


def test_user_credentials_are_named_by_the_email_google_gives_for_their_token() -> None:
    operator = identity(user_credentials("stale@example.com"), token_emails={"access-token": "alice@example.com"})
    assert operator.current() == Operator("alice@example.com", "user credentials (token info)", True)


def test_user_credentials_fall_back_to_the_account_gcloud_recorded() -> None:
    operator = identity(user_credentials("bob@example.com")).current()
    assert operator == Operator("bob@example.com", "user credentials (gcloud account)", True)


@pytest.mark.parametrize(
    "credentials",
    [
        DefaultCredentialsError("no credentials"),
        user_credentials(),  # a token Google names nobody for, and no account
    ],
)
def test_without_a_name_from_credentials_the_declared_operator_is_recorded_as_declared(credentials: Any) -> None:
    operator = identity(credentials, declared=" carol ").current()
    assert operator == Operator("carol", "TUNEDROP_OPERATOR", False)
    assert operator.actor == "carol (TUNEDROP_OPERATOR)"


def test_credentials_that_cannot_be_refreshed_fall_back_to_the_declared_operator() -> None:
    def offline(credentials: Any) -> None:
        raise RefreshError("no network")

    found = GoogleOperatorIdentity("carol", load=user_credentials, token_email=lambda token: "", refresh=offline)
    assert found.current().actor == "carol (TUNEDROP_OPERATOR)"


@pytest.mark.parametrize("source", [identity(DefaultCredentialsError("none")), DeclaredOperator("  ")])
def test_nobody_named_is_refused_saying_how_to_name_yourself(source: Any) -> None:
    with pytest.raises(OperatorUnknown) as refused:
        source.current()
    assert isinstance(refused.value, ConfigError)  # the command exits 2, as for any configuration problem
    assert "TUNEDROP_OPERATOR" in str(refused.value) and "gcloud auth application-default login" in str(refused.value)


def test_against_emulators_only_the_declared_operator_counts() -> None:
    assert isinstance(operator_identity("carol", emulated=True), DeclaredOperator)
    assert operator_identity("carol", emulated=True).current().actor == "carol (TUNEDROP_OPERATOR)"
    assert isinstance(operator_identity("carol", emulated=False), GoogleOperatorIdentity)


class TokenInfoResponse:
    def __init__(self, status: int, data: bytes) -> None:
        self.status, self.data = status, data


@pytest.mark.parametrize(
    ("status", "data", "email"),
    [
        (200, b'{"email": "alice@example.com", "email_verified": "true", "scope": "openid"}', "alice@example.com"),
        (200, b'{"email": "alice@example.com", "email_verified": true}', "alice@example.com"),
        (200, b'{"email": "alice@example.com", "email_verified": "false"}', ""),
        (200, b'{"email": "alice@example.com"}', ""),
        (200, b"not json", ""),
        (400, b'{"error": "invalid_token"}', ""),
    ],
)
def test_the_token_info_email_is_taken_only_when_google_says_it_is_verified(
    monkeypatch: pytest.MonkeyPatch, status: int, data: bytes, email: str
) -> None:
    sent: list[dict[str, Any]] = []

    def request(**call: Any) -> TokenInfoResponse:
        sent.append(call)
        return TokenInfoResponse(status, data)

    monkeypatch.setattr(identity_module, "_transport", lambda: request)
    assert identity_module.token_info_email("ya29.secret") == email
    (call,) = sent
    assert call["url"] == "https://oauth2.googleapis.com/tokeninfo" and call["method"] == "POST"
    assert call["body"] == b"access_token=ya29.secret"  # in the body: never in a URL that may be logged
