"""Masking by structure as well as by value: a value under a password, key, secret or *_KEY
field is blanked in every print and diff, registered or not; every value of a secrets file
is registered, short ones too (as whole words)."""

from __future__ import annotations

import pytest

from supakong.plan import unified_diff
from supakong.secrets import load_secrets, mask


@pytest.mark.parametrize(
    ("line", "hidden"),
    [
        ("    password: pw1", "pw1"),
        ("+    password: 'a b c'", "a b c"),
        ("  - key: k9", "k9"),
        ('{"secret": "s3", "username": "u"}', "s3"),
        ("SUPABASE_ANON_KEY=ak", "ak"),
        ("  anon_key: x7", "x7"),
        ("client_secret: cs", "cs"),
    ],
)
def test_a_value_under_a_credential_field_is_masked_unregistered(line, hidden):
    masked = mask(line)
    assert hidden not in masked and "***" in masked


@pytest.mark.parametrize(
    "line", ["  - key: $SUPABASE_ANON_KEY", "    password: '${DASHBOARD_PASSWORD}'", "    username: supabase"]
)
def test_references_and_other_fields_stay_readable(line):
    assert mask(line) == line


def test_check_diff_never_shows_the_live_files_dashboard_password():
    # deploy-kong --check against a live file with the password in clear, and no local one.
    live = "basicauth_credentials:\n  - consumer: DASHBOARD\n    username: supabase\n    password: hunter\n"
    desired = live.replace("password: hunter", "password: $DASHBOARD_PASSWORD")
    diff = unified_diff(live, desired, "/srv/kong.yml")
    assert "hunter" not in diff
    assert "-    password: ***" in diff and "+    password: $DASHBOARD_PASSWORD" in diff


def test_every_value_of_a_secrets_file_is_registered_short_ones_as_words(tmp_path):
    env = tmp_path / "secrets.env"
    env.write_text("SMTP_PASS=q7w\nOTHER_SETTING=rarely-seen-value\nPOSTGRES_HOST=db\n")
    load_secrets(env, environ={}, required=())
    masked = mask("smtp q7w, setting rarely-seen-value, q7wx stays, db stays")
    assert "q7w," not in masked and "rarely-seen-value" not in masked
    assert "q7wx stays" in masked and "db stays" in masked


@pytest.mark.parametrize(
    "line",
    [
        "  with the publishable key: SUBSCRIBED in 12 ms",
        "Kong does not know the publishable key: no keyauth credential is loaded",
        "hosts/edge-1/kong_secrets: expected reference or inline",
    ],
)
def test_prose_that_mentions_a_key_stays_readable(line):
    assert mask(line) == line
