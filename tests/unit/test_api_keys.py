"""Today's self-hosted keys, made as upstream's add-new-auth-keys.sh makes them, and masked
wherever supakong prints."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import jwt

from supakong.sandbox.api_keys import make_api_keys, opaque_key
from supakong.secrets import mask

SECRET = "legacy-secret-0123456789abcdefghijklmnop"


def test_opaque_keys_have_the_documented_shape_and_checksum() -> None:
    for prefix, length in (("sb_publishable_", 46), ("sb_secret_", 41)):
        key = opaque_key(prefix)
        assert re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}", key) and len(key) == length
        head, checksum = key[:-9], key[-8:]
        digest = hashlib.sha256(f"supabase-self-hosted|{head}".encode()).digest()
        assert checksum == base64.urlsafe_b64encode(digest).decode()[:8]


def test_asymmetric_jwts_verify_against_the_jwks_and_carry_role_iss_and_five_years() -> None:
    keys = make_api_keys(SECRET, now=1_800_000_000)
    jwks = json.loads(keys["JWT_JWKS"])
    ec_key = next(k for k in jwks["keys"] if k["kty"] == "EC")
    for name, role in (("ANON_KEY_ASYMMETRIC", "anon"), ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role")):
        assert jwt.get_unverified_header(keys[name]) == {"alg": "ES256", "typ": "JWT", "kid": ec_key["kid"]}
        claims = jwt.decode(
            keys[name], jwt.PyJWK(ec_key).key, ["ES256"], options={"verify_exp": False, "verify_iat": False}
        )
        assert claims == {"role": role, "iss": "supabase", "iat": 1_800_000_000, "exp": 1_800_000_000 + 5 * 365 * 86400}
    oct_key = next(k for k in jwks["keys"] if k["kty"] == "oct")
    assert "kid" not in oct_key and base64.urlsafe_b64decode(oct_key["k"] + "==").decode() == SECRET
    assert "d" not in ec_key and ec_key["key_ops"] == ["verify"]
    assert "d" in json.loads(keys["JWT_KEYS"])[0]


def test_opaque_keys_are_masked_even_when_never_registered() -> None:
    key = opaque_key("sb_publishable_")
    text = mask(f"ws://h/realtime/v1/websocket?vsn=2.0.0 sent {key} and sb_secret_{key[15:]}")
    assert key[15:] not in text and "sb_publishable_***" in text and "sb_secret_***" in text
