"""Settings: defaults, required values, and one clear message naming every bad setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import SETTINGS, CommonSettings, Settings, setting_default
from shared.errors import ConfigError
from shared.policy import Policies, TeamPolicy

REQUIRED = {"GOOGLE_CLOUD_PROJECT": "demo", "TUNEDROP_BUCKET": "ds"}


def test_defaults() -> None:
    s = Settings.from_env(REQUIRED)
    assert (s.project, s.bucket) == ("demo", "ds")
    assert s.region == "us-central1"
    assert s.incoming_prefix == "incoming/"
    assert s.reports_prefix == "reports/"
    assert s.uploads_topic == "tunedrop-uploads"
    assert s.dispatch_topic == "tunedrop-dispatch"
    assert s.poll_topic == "tunedrop-poll"
    assert s.completions_topic == "tunedrop-completions"
    assert s.quota == 1
    assert s.base_model == "gemini-3.5-flash"
    assert s.collection_prefix == "tunedrop"
    assert s.firestore_database == "(default)"
    assert s.submit_lease_seconds == 300
    assert s.vertex_emulator_host == ""
    assert s.topic_path(s.completions_topic) == "projects/demo/topics/tunedrop-completions"


def test_every_setting_with_a_default_is_documented_with_it() -> None:
    s = Settings.from_env(REQUIRED)
    documented = {x.name: x.default for x in SETTINGS}
    assert documented["TUNEDROP_QUOTA"] == str(s.quota)
    assert documented["TUNEDROP_REGION"] == s.region
    assert {name for name, default in documented.items() if default is None} == set(REQUIRED)


def test_values_from_the_environment_win_and_are_stripped() -> None:
    s = Settings.from_env(
        {
            **REQUIRED,
            "TUNEDROP_REGION": "europe-west4",
            "TUNEDROP_QUOTA": " 7 ",
            "TUNEDROP_SUBMIT_LEASE_SECONDS": "60",
            "TUNEDROP_COMPLETIONS_TOPIC": "done.events",
            "TUNEDROP_VERTEX_EMULATOR_HOST": " 127.0.0.1:8089 ",
            "TUNEDROP_BASE_MODEL": "   ",  # blank falls back to the default
        }
    )
    assert (s.region, s.quota, s.submit_lease_seconds) == ("europe-west4", 7, 60)
    assert s.completions_topic == "done.events"
    assert s.vertex_emulator_host == "127.0.0.1:8089"
    assert s.base_model == "gemini-3.5-flash"


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    monkeypatch.setenv("TUNEDROP_BUCKET", "bucket-env")
    monkeypatch.delenv("TUNEDROP_QUOTA", raising=False)
    assert Settings.from_env().project == "from-env"


def test_a_given_mapping_replaces_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A test (or a stack) that passes its own mapping must not pick up what the shell exported.
    monkeypatch.setenv("TUNEDROP_EVENTS_TOPIC", "exported-topic")
    monkeypatch.setenv("TUNEDROP_QUOTA", "7")
    settings = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "TUNEDROP_BUCKET": "b"})
    assert settings.events_topic == ""
    assert settings.quota == 1
    assert CommonSettings.from_env({}).project == ""


def test_missing_required_settings_are_named_together() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({})
    message = str(caught.value)
    assert "GOOGLE_CLOUD_PROJECT is not set" in message
    assert "TUNEDROP_BUCKET is not set" in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TUNEDROP_QUOTA", "two", "TUNEDROP_QUOTA='two' is not a whole number"),
        ("TUNEDROP_QUOTA", "1.5", "TUNEDROP_QUOTA='1.5' is not a whole number"),
        ("TUNEDROP_QUOTA", "0", "TUNEDROP_QUOTA=0 is outside 1..1000"),
        ("TUNEDROP_QUOTA", "1001", "TUNEDROP_QUOTA=1001 is outside 1..1000"),
        ("TUNEDROP_SUBMIT_LEASE_SECONDS", "5", "TUNEDROP_SUBMIT_LEASE_SECONDS=5 is outside 60..86400"),
        ("TUNEDROP_REGION", "US Central", "TUNEDROP_REGION='US Central' is not a region like us-central1"),
        ("TUNEDROP_UPLOADS_TOPIC", "9uploads", "TUNEDROP_UPLOADS_TOPIC='9uploads' is not a valid Pub/Sub topic id"),
        ("TUNEDROP_DISPATCH_TOPIC", "a b", "TUNEDROP_DISPATCH_TOPIC='a b' is not a valid Pub/Sub topic id"),
        ("TUNEDROP_POLL_TOPIC", "ab", "TUNEDROP_POLL_TOPIC='ab' is not a valid Pub/Sub topic id"),
        ("TUNEDROP_COMPLETIONS_TOPIC", "x/y", "TUNEDROP_COMPLETIONS_TOPIC='x/y' is not a valid Pub/Sub topic id"),
    ],
)
def test_one_malformed_setting(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**REQUIRED, name: value})
    assert str(caught.value) == f"Tunedrop configuration is invalid: {expected}."


def test_all_problems_are_reported_in_one_message() -> None:
    env = {
        "TUNEDROP_BUCKET": "ds",
        "TUNEDROP_QUOTA": "lots",
        "TUNEDROP_SUBMIT_LEASE_SECONDS": "-1",
        "TUNEDROP_REGION": "moon",
        "TUNEDROP_POLL_TOPIC": "poll topic",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert message.count("Tunedrop configuration is invalid") == 1
    for name in (
        "GOOGLE_CLOUD_PROJECT",
        "TUNEDROP_QUOTA",
        "TUNEDROP_SUBMIT_LEASE_SECONDS",
        "TUNEDROP_REGION",
        "TUNEDROP_POLL_TOPIC",
    ):
        assert message.count(name) == 1, name
    assert "TUNEDROP_BUCKET" not in message
    assert "\n" not in message


def test_topic_ids_may_not_start_with_goog() -> None:
    import pytest

    from shared.config import Settings
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match="TUNEDROP_COMPLETIONS_TOPIC='google-done' is not a valid Pub/Sub topic id"):
        Settings.from_env(
            {"GOOGLE_CLOUD_PROJECT": "p", "TUNEDROP_BUCKET": "b", "TUNEDROP_COMPLETIONS_TOPIC": "google-done"}
        )


def test_comma_separated_lists_are_split_deduplicated_and_checked() -> None:
    s = Settings.from_env(
        {**REQUIRED, "TUNEDROP_QUOTA_REGIONS": " europe-west4, ,us-east1", "TUNEDROP_RETIREMENT_NOTICE_DAYS": "7, 30,7"}
    )
    assert s.quota_regions == ("europe-west4", "us-east1")
    assert s.retirement_notice_days == (30, 7)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {**REQUIRED, "TUNEDROP_QUOTA_REGIONS": "Mars", "TUNEDROP_RETIREMENT_NOTICE_DAYS": "30,0,x"},
        )
    message = str(caught.value)
    assert "TUNEDROP_QUOTA_REGIONS has 'Mars', which is not a region like europe-west4" in message
    assert "TUNEDROP_RETIREMENT_NOTICE_DAYS has '0', which is not a whole number of days 1..365" in message
    assert "TUNEDROP_RETIREMENT_NOTICE_DAYS has 'x'" in message


def test_the_reconcile_window_must_be_shorter_than_retention() -> None:
    with pytest.raises(ConfigError, match="TUNEDROP_RECONCILE_WINDOW_DAYS=30 must be shorter than TUNEDROP_RETENTION"):
        Settings.from_env({**REQUIRED, "TUNEDROP_RECONCILE_WINDOW_DAYS": "30", "TUNEDROP_RETENTION_DAYS": "30"})
    assert Settings.from_env({**REQUIRED, "TUNEDROP_RETENTION_DAYS": "8"}).retention_days == 8


def test_settings_are_frozen() -> None:
    s = Settings.from_env(REQUIRED)
    with pytest.raises(ValidationError):
        s.quota = 5


def test_common_settings_need_no_project_nor_bucket() -> None:
    common = CommonSettings.from_env({"TUNEDROP_REGION": "europe-west4"})
    assert (common.project, common.region, common.base_model) == ("", "europe-west4", "gemini-3.5-flash")
    assert common.model_retiring_days == 30 and common.vertex_emulator_host == ""
    assert not hasattr(common, "bucket")
    with pytest.raises(ConfigError, match=r"TUNEDROP_MODEL_RETIRING_DAYS=400 is outside 0\.\.365"):
        CommonSettings.from_env({"TUNEDROP_MODEL_RETIRING_DAYS": "400"})


def test_the_table_and_the_defaults_come_from_the_model() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names)) == len(Settings.model_fields)
    assert all(s.doc for s in SETTINGS)
    assert setting_default("TUNEDROP_RETIREMENT_NOTICE_DAYS") == "30,7"
    assert setting_default("TUNEDROP_QUOTA_REGIONS") == ""
    assert setting_default("TUNEDROP_BUCKET") == ""
    assert setting_default("TUNEDROP_SUBMIT_LEASE_SECONDS") == str(Settings.from_env(REQUIRED).submit_lease_seconds)


@pytest.mark.parametrize(("raw", "strict"), [("true", True), ("1", True), ("false", False), ("0", False)])
def test_strict_validation_is_off_unless_set(raw: str, strict: bool) -> None:
    assert Settings.from_env(REQUIRED).strict_validation is False
    assert CommonSettings.from_env({}).strict_validation is False  # the CLI's settings read it too
    assert Settings.from_env({**REQUIRED, "TUNEDROP_STRICT_VALIDATION": raw}).strict_validation is strict


def test_a_malformed_strict_validation_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**REQUIRED, "TUNEDROP_STRICT_VALIDATION": "maybe"})
    assert "TUNEDROP_STRICT_VALIDATION" in str(caught.value)


def test_an_integer_setting_takes_whole_numbers_only() -> None:
    with pytest.raises(ConfigError, match=r"TUNEDROP_QUOTA='5\.0' is not a whole number"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "TUNEDROP_BUCKET": "b", "TUNEDROP_QUOTA": "5.0"})


def test_the_window_check_is_reported_even_when_another_setting_fails() -> None:
    env = {
        "GOOGLE_CLOUD_PROJECT": "p",
        "TUNEDROP_BUCKET": "b",
        "TUNEDROP_QUOTA": "x",
        "TUNEDROP_RECONCILE_WINDOW_DAYS": "30",
        "TUNEDROP_RETENTION_DAYS": "20",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert "TUNEDROP_QUOTA='x' is not a whole number" in str(caught.value)
    assert "TUNEDROP_RECONCILE_WINDOW_DAYS=30 must be shorter than TUNEDROP_RETENTION_DAYS=20" in str(caught.value)


def test_team_policies_default_to_todays_behaviour_and_are_parsed_at_cold_start() -> None:
    assert Settings.from_env(REQUIRED).team_policies == Policies()
    assert setting_default("TUNEDROP_TEAM_POLICIES") == ""
    document = '{"default": {"max_priority": 10}, "teams": {"search": {"weight": 2, "max_slots": 3}}}'
    policies = Settings.from_env({**REQUIRED, "TUNEDROP_TEAM_POLICIES": f"  {document}\n"}).team_policies
    assert policies.for_team("search") == TeamPolicy(max_priority=10, weight=2, max_slots=3)
    assert policies.for_team("ads") == TeamPolicy(max_priority=10)


def test_a_bad_team_policy_is_reported_with_the_other_bad_settings() -> None:
    env = {**REQUIRED, "TUNEDROP_QUOTA": "lots", "TUNEDROP_TEAM_POLICIES": '{"teams": {"search": {"weight": 0}}}'}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert message.count("Tunedrop configuration is invalid") == 1
    assert 'TUNEDROP_TEAM_POLICIES is invalid: team "search": weight=0 is outside 1..1000' in message
    assert "TUNEDROP_QUOTA='lots' is not a whole number" in message
