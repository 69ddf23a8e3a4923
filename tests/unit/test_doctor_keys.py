"""The opaque-key checks of the doctor and the key-aware diagnosis, as data: each broken
link of publishable key -> Kong -> ES256 JWT -> Realtime's JWKS fails with its own cause."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from supakong.checks import FAIL, OK
from supakong.doctor_keys import KeyFacts, doctor_key_checks
from supakong.sandbox.api_keys import make_api_keys
from supakong.secrets import mask
from supakong.verify_diagnose import NOT_JWT_CAUSE, STALE_KEY_CAUSE, diagnose_handshake
from supakong.verify_keys import KID_CAUSE, NO_JWKS_CAUSE, UNKNOWN_KEY_CAUSE, UNTRANSLATED_CAUSE, for_key
from supakong.verify_model import Diagnosis

SOURCE = (Path(__file__).resolve().parents[1] / "unit/kong/fixtures/supabase_2026_kong.yml").read_text()
KEYS = make_api_keys("legacy-secret-0123456789abcdefghijklmnop")
KONG_ENV = {name: KEYS[name] for name in ("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "ANON_KEY_ASYMMETRIC")}
LOADED = SOURCE.replace("$SUPABASE_PUBLISHABLE_KEY", KEYS["SUPABASE_PUBLISHABLE_KEY"])


def facts(**changes: object) -> KeyFacts:
    base: dict[str, object] = {
        "kong_container": "supabase-kong",
        "realtime_container": "realtime-dev.supabase-realtime",
        "kong_env": KONG_ENV,
        "realtime_env": {"API_JWT_JWKS": KEYS["JWT_JWKS"]},
        "source": SOURCE,
        "loaded": LOADED,
        "now": time.time(),
    }
    return KeyFacts(**{**base, **changes})  # type: ignore[arg-type]


def statuses(f: KeyFacts) -> dict[str, tuple[str, str]]:
    return {check.name: (check.status, check.detail) for check in doctor_key_checks(f)}


def test_a_healthy_modern_host_passes_all_three() -> None:
    assert {name: status for name, (status, _) in statuses(facts()).items()} == {
        "publishable key": OK,
        "ws translation": OK,
        "realtime jwks": OK,
    }


def test_a_legacy_only_host_gets_no_key_checks() -> None:
    assert doctor_key_checks(facts(kong_env={"SUPABASE_ANON_KEY": "x"})) == []


WS_TRANSFORMER = '              - "x-api-key:$LUA_RT_WS_EXPR"\n'
OTHER = make_api_keys("another-secret-0123456789abcdefghijklmnop")


@pytest.mark.parametrize(
    ("changes", "check", "needle"),
    [
        ({"kong_env": {**KONG_ENV, "SUPABASE_SECRET_KEY": ""}}, "publishable key", "no SUPABASE_SECRET_KEY"),
        ({"local_publishable": OTHER["SUPABASE_PUBLISHABLE_KEY"]}, "publishable key", "is not the one"),
        (
            {"source": SOURCE.replace("      - key: $SUPABASE_PUBLISHABLE_KEY\n", "")},
            "publishable key",
            "no keyauth credential $SUPABASE_PUBLISHABLE_KEY",
        ),
        ({"loaded": SOURCE}, "publishable key", "deletes empty key lines"),
        (
            {
                "source": SOURCE.replace(WS_TRANSFORMER, "").replace(
                    '              - "apikey:$LUA_RT_WS_EXPR"\n', '              - "apikey:x"\n'
                )
            },
            "ws translation",
            "translation missing on the ws route",
        ),
        ({"realtime_env": {}}, "realtime jwks", "API_JWT_JWKS not set"),
        ({"realtime_env": {"API_JWT_JWKS": '{"keys":[]}'}}, "realtime jwks", "lacks kid"),
        ({"realtime_env": {"API_JWT_JWKS": "nope"}}, "realtime jwks", "is not a JWKS"),
        (
            {"kong_env": {**KONG_ENV, "ANON_KEY_ASYMMETRIC": OTHER["SERVICE_ROLE_KEY_ASYMMETRIC"]}},
            "realtime jwks",
            "lacks kid",
        ),
        (
            {"kong_env": {**KONG_ENV, "ANON_KEY_ASYMMETRIC": KEYS["SERVICE_ROLE_KEY_ASYMMETRIC"]}},
            "realtime jwks",
            "role 'service_role'",
        ),
        ({"now": time.time() + 6 * 365 * 86400}, "realtime jwks", "expired"),
    ],
)
def test_each_broken_link_fails_its_own_check(changes: dict[str, object], check: str, needle: str) -> None:
    status, detail = statuses(facts(**changes))[check]
    assert status == FAIL and needle in detail
    assert not any(value in detail for value in KEYS.values())
    assert mask(detail) == detail  # readable as printed: nothing in it looks like a credential


def test_a_jwk_with_the_kid_but_another_key_is_a_signature_failure() -> None:
    jwks = json.loads(OTHER["JWT_JWKS"])
    kid = json.loads(KEYS["JWT_JWKS"])["keys"][0]["kid"]
    jwks["keys"][0]["kid"] = kid
    status, detail = statuses(facts(realtime_env={"API_JWT_JWKS": json.dumps(jwks)}))["realtime jwks"]
    assert status == FAIL and "does not verify" in detail


@pytest.mark.parametrize(
    ("status", "body", "server", "apikey", "cause"),
    [
        (401, '{"error":"The token provided is not a valid JWT"}', "via", "sb_publishable_x", UNTRANSLATED_CAUSE),
        (401, '{"error":"The token provided is not a valid JWT"}', "via", "eyJ.x.y", NOT_JWT_CAUSE),
        (401, '{"message":"Unauthorized"}', "server", "sb_publishable_x", UNKNOWN_KEY_CAUSE),
        (401, '{"message":"Unauthorized"}', "server", "eyJ.x.y", STALE_KEY_CAUSE),
        (
            401,
            '{"error":"Failed to generate JWT signer, check your JWT secret or JWKS configuration"}',
            "via",
            "sb_publishable_x",
            NO_JWKS_CAUSE,
        ),
        (
            401,
            '{"error":"Failed to generate JWT signer for key ID (kid) \\"k\\", check your JWT secret or JWKS'
            ' configuration"}',
            "via",
            "sb_publishable_x",
            KID_CAUSE,
        ),
    ],
)
def test_kong_39_and_realtime_answers_are_mapped_per_key_kind(
    status: int, body: str, server: str, apikey: str, cause: str
) -> None:
    headers = {"Server": "kong/3.9.3"} if server == "server" else {"Via": "1.1 kong/3.9.3"}
    diagnosis = for_key(diagnose_handshake(status, body, headers), apikey)
    assert isinstance(diagnosis, Diagnosis) and diagnosis.cause == cause
    assert mask(diagnosis.cause) == diagnosis.cause and mask(diagnosis.fix) == diagnosis.fix
