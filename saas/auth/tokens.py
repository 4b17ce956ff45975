"""JWT access tokens (PyJWT) with an algorithm allow-list and every claim checked.

Claims: ``iss``, ``aud``, ``exp``, ``iat``, ``nbf``, ``jti``, ``sub`` (user id), ``tid`` (tenant id),
``typ`` (``access``), ``ver`` (the user's token version) and the ``kid`` header. The role is NOT trusted from
the token: :mod:`saas.auth.principal` re-reads role, status and version from the database on every call.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import jwt
import msgspec

from tenants.errors import AtendeError

__all__ = ["AUDIENCE", "ISSUER", "Claims", "InvalidToken", "TokenService"]

ISSUER = "atende"
AUDIENCE = "atende-api"
ALGORITHMS = ["HS256"]


class InvalidToken(AtendeError):
    code = "invalid_token"
    status = 401
    title = "Invalid or expired token"


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    sub: str
    tid: int
    ver: int
    typ: str
    jti: str
    exp: int
    role: str = ""
    fam: str | None = None  # refresh tokens: the rotation family
    scopes: tuple[str, ...] = ()  # API tokens: the permissions they hold


def kid_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class TokenService:
    """Signs and verifies tokens with the active key; older keys (by ``kid``) still verify during rotation."""

    __slots__ = ("active_kid", "keys", "ttl_s")

    def __init__(self, keys: dict[str, str], active_kid: str, ttl_s: int = 900) -> None:
        if active_kid not in keys:
            raise ValueError("the active kid must be one of the keys")
        self.keys = keys
        self.active_kid = active_kid
        self.ttl_s = ttl_s

    @classmethod
    def from_secrets(cls, active: str, previous: tuple[str, ...] = (), ttl_s: int = 900) -> TokenService:
        """Sign with ``active``; keep verifying tokens of the ``previous`` keys. A key's ``kid`` is derived from
        it (a hash prefix), so rotating means: new ``ATENDE_SECRET_KEY``, old one into
        ``ATENDE_PREVIOUS_SECRET_KEYS`` until the longest-lived token signed with it has expired."""
        keys = {kid_of(k): k for k in (*previous, active)}
        return cls(keys, kid_of(active), ttl_s)

    def issue(
        self,
        *,
        user_id: int,
        tenant_id: int,
        version: int,
        role: str,
        typ: str = "access",
        ttl_s: int | None = None,
        family: str | None = None,
        jti: str | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + (ttl_s or self.ttl_s),
            "jti": jti or secrets.token_urlsafe(12), "sub": str(user_id), "tid": tenant_id, "typ": typ,
            "ver": version, "role": role,
        }  # fmt: skip
        if family is not None:
            claims["fam"] = family
        return jwt.encode(claims, self.keys[self.active_kid], algorithm="HS256", headers={"kid": self.active_kid})

    def verify(self, token: str, *, typ: str = "access") -> Claims:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            if not isinstance(kid, str) or kid not in self.keys:
                raise InvalidToken("unknown signing key")
            payload = jwt.decode(
                token, self.keys[kid], algorithms=ALGORITHMS, audience=AUDIENCE, issuer=ISSUER,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
            )  # fmt: skip
            claims = msgspec.convert(payload, Claims, strict=False)
        except (jwt.PyJWTError, msgspec.ValidationError) as exc:
            raise InvalidToken("invalid token") from exc
        if claims.typ != typ:
            raise InvalidToken("wrong token type")
        return claims
