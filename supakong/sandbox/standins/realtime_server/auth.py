"""Realtime's checks of a JWT (handshake, join, access_token refresh, health endpoint)."""

from __future__ import annotations

import time
from typing import Any

import jwt

HS_ALGORITHMS = ["HS256", "HS384", "HS512"]
MISSING_CLAIMS = "Fields `role` and `exp` are required in JWT"


class TokenRejected(Exception):
    """A JWT Realtime would refuse, with its error code and both forms of the message."""

    def __init__(self, code: str, message: str, http_error: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message  # as in logs and channel join replies
        self.http_error = http_error or message  # as in the handshake's JSON body


def verify_jwt(token: str, secret: str, now: float | None = None) -> dict[str, Any]:
    """Check a token the way Realtime does: signature first, then ``exp`` and ``role``."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=HS_ALGORITHMS,
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
