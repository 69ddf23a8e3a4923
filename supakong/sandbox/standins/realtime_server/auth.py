"""Realtime's checks of a JWT (handshake, join, access_token refresh, health endpoint).

Which key verifies a token follows supabase/realtime's ``RealtimeWeb.JwtVerification``
(``lib/realtime_web/channels/auth/jwt_verification.ex``): the header's ``alg`` picks it.
RS*/ES*/PS*/EdDSA with a ``kid`` take the JWK of that kid from the tenant's JWKS
(``API_JWT_JWKS``); HS* with a ``kid`` take the ``oct`` JWK of that kid, else the tenant's
``jwt_secret`` (``API_JWT_SECRET``), as does HS* without a ``kid``. No key found is Realtime's
"Failed to generate JWT signer" error, with the kid when the token named one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import jwt

HS_ALGORITHMS = ["HS256", "HS384", "HS512"]
ASYMMETRIC_ALGORITHMS = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
}
MISSING_CLAIMS = "Fields `role` and `exp` are required in JWT"
SIGNER_ERROR = "Failed to generate JWT signer, check your JWT secret or JWKS configuration"


class TokenRejected(Exception):
    """A JWT Realtime would refuse, with its error code and both forms of the message."""

    def __init__(self, code: str, message: str, http_error: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message  # as in logs and channel join replies
        self.http_error = http_error or message  # as in the handshake's JSON body


def signer_error(kid: str | None) -> TokenRejected:
    """Realtime's ``:error_generating_signer``, naming the kid it looked for."""
    if kid is None:
        return TokenRejected("JwtSignerError", SIGNER_ERROR)
    text = f'Failed to generate JWT signer for key ID (kid) "{kid}", check your JWT secret or JWKS configuration'
    return TokenRejected("JwtSignerError", text)


def parse_jwks(text: str) -> dict[str, Any] | None:
    """``API_JWT_JWKS`` as Realtime's seed decodes it (``Jason.decode!``): None when unset;
    ValueError when it is not a JSON object with a ``keys`` list."""
    if not text.strip():
        return None
    jwks = json.loads(text)
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError('API_JWT_JWKS must be a JSON object like {"keys": [...]}')
    return jwks


def _jwk(jwks: Mapping[str, Any] | None, kid: str, kty: str) -> dict[str, Any] | None:
    for key in (jwks or {}).get("keys", []):
        if isinstance(key, dict) and key.get("kid") == kid and key.get("kty") == kty:
            return key
    return None


def verification_key(token: str, secret: str, jwks: Mapping[str, Any] | None) -> tuple[Any, str]:
    """The key and algorithm that verify ``token`` (see the module docstring)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise TokenRejected("MalformedJWT", "The token provided is not a valid JWT") from exc
    alg, kid = header.get("alg"), header.get("kid")
    kid = kid if isinstance(kid, str) else None
    if alg in HS_ALGORITHMS:
        oct_key = _jwk(jwks, kid, "oct") if kid is not None else None
        if oct_key is not None:
            return jwt.PyJWK(oct_key, alg).key, alg
        return secret, alg
    if alg in ASYMMETRIC_ALGORITHMS and kid is not None:
        found = _jwk(jwks, kid, ASYMMETRIC_ALGORITHMS[alg])
        if found is not None:
            return jwt.PyJWK(found, alg).key, alg
        raise signer_error(kid if jwks is not None else None)
    raise signer_error(None)


def verify_jwt(
    token: str, secret: str, now: float | None = None, jwks: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check a token the way Realtime does: signer, signature, then ``exp`` and ``role``."""
    key, alg = verification_key(token, secret, jwks)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            # exp is checked below so the message can say how long ago it expired.
            options={
                "verify_exp": False,
                "verify_aud": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as exc:
        raise TokenRejected("JwtSignatureError", "Failed to validate JWT signature") from exc
    except jwt.DecodeError as exc:
        raise TokenRejected("MalformedJWT", "The token provided is not a valid JWT") from exc
    exp = claims.get("exp")
    if not isinstance(exp, int) or "role" not in claims:
        raise TokenRejected("InvalidJWTToken", MISSING_CLAIMS)
    remaining = exp - int(time.time() if now is None else now)
    if remaining <= 0:
        raise TokenRejected("InvalidJWTToken", f"Token has expired {-remaining} seconds ago", "Token has expired")
    return claims
