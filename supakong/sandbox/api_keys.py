"""The opaque API keys and asymmetric JWTs of today's self-hosted Supabase, made the way
upstream's ``docker/utils/add-new-auth-keys.sh`` makes them (supabase/supabase, the
node/openssl version at 12b126dc; https://supabase.com/docs/guides/self-hosting/self-hosted-auth-keys):

- an EC P-256 key pair with a random ``kid``;
- ``ANON_KEY_ASYMMETRIC`` / ``SERVICE_ROLE_KEY_ASYMMETRIC``: ES256 JWTs with header
  ``{alg, typ, kid}`` and payload ``{role, iss: "supabase", iat, exp: iat + 5 years}``;
- ``SUPABASE_PUBLISHABLE_KEY`` / ``SUPABASE_SECRET_KEY``: ``prefix + base64url(17 random
  bytes)[:22] + "_" + base64url(sha256("supabase-self-hosted|" + prefix + random))[:8]``;
- ``JWT_KEYS``: the signing JWK array (the EC key with ``d``, and the legacy secret as an
  ``oct`` key without a kid); ``JWT_JWKS``: ``{"keys": [...]}`` without the private part,
  which is what Realtime's ``API_JWT_JWKS`` takes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as pysecrets
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

FIVE_YEARS = 5 * 365 * 86400
PUBLISHABLE_PREFIX = "sb_publishable_"
SECRET_PREFIX = "sb_secret_"
#: The env names the script writes (``--update-env``).
NAMES = (
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "ANON_KEY_ASYMMETRIC",
    "SERVICE_ROLE_KEY_ASYMMETRIC",
    "JWT_KEYS",
    "JWT_JWKS",
)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as Node's ``Buffer.toString("base64url")``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def opaque_key(prefix: str) -> str:
    """One ``sb_publishable_…`` / ``sb_secret_…`` key with its 8-character checksum."""
    head = prefix + b64url(pysecrets.token_bytes(17))[:22]
    checksum = b64url(hashlib.sha256(f"supabase-self-hosted|{head}".encode()).digest())[:8]
    return f"{head}_{checksum}"


def _ec_jwk(private: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, object]:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private))
    return {
        "kty": "EC",
        "kid": kid,
        "use": "sig",
        "key_ops": ["sign", "verify"],
        "alg": "ES256",
        "ext": True,
        "crv": "P-256",
        "x": jwk["x"],
        "y": jwk["y"],
        "d": jwk["d"],
    }


def make_api_keys(jwt_secret: str, now: int | None = None) -> dict[str, str]:
    """The six values of :data:`NAMES` for a project whose legacy secret is ``jwt_secret``."""
    private = ec.generate_private_key(ec.SECP256R1())
    kid = str(uuid.uuid4())
    iat = int(time.time()) if now is None else now
    claims = {"iss": "supabase", "iat": iat, "exp": iat + FIVE_YEARS}
    header = {"kid": kid, "typ": "JWT"}
    signing = _ec_jwk(private, kid)
    oct_key = {"kty": "oct", "k": b64url(jwt_secret.encode()), "alg": "HS256"}
    public = {k: v for k, v in signing.items() if k != "d"} | {"key_ops": ["verify"]}
    return {
        "SUPABASE_PUBLISHABLE_KEY": opaque_key(PUBLISHABLE_PREFIX),
        "SUPABASE_SECRET_KEY": opaque_key(SECRET_PREFIX),
        "ANON_KEY_ASYMMETRIC": jwt.encode({"role": "anon", **claims}, private, "ES256", header),
        "SERVICE_ROLE_KEY_ASYMMETRIC": jwt.encode({"role": "service_role", **claims}, private, "ES256", header),
        "JWT_KEYS": json.dumps([signing, oct_key], separators=(",", ":")),
        "JWT_JWKS": json.dumps({"keys": [public, oct_key]}, separators=(",", ":")),
    }
