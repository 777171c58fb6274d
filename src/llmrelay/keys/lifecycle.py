"""What a key's record allows, as pure functions: authenticate a secret, rotate, revoke.

:class:`~llmrelay.keys.service.KeyService` reads a record, asks these functions for the verdict or
the changed copy, and writes it back with the store's compare-and-set; nothing here does I/O or
reads a clock (``now`` is Unix seconds from the caller).

Boundaries: a key expires *at* ``expires_at``, and a rotated-out secret stops working *at*
``grace_until`` (both instants already count as past).
"""

from __future__ import annotations

import hmac

import msgspec

from llmrelay.errors import AuthenticationError, Conflict
from llmrelay.keys.model import VirtualKey, display_prefix, hash_secret

INVALID = "invalid API key"


def check(key: VirtualKey, digest: str, *, now: float) -> None:
    """Raise :class:`AuthenticationError` unless the secret hashing to ``digest`` may use ``key``."""
    if key.revoked_at is not None:
        raise AuthenticationError("this API key has been revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise AuthenticationError("this API key has expired")
    if hmac.compare_digest(key.hash, digest):
        return
    if hmac.compare_digest(key.previous_hash or "", digest):
        if key.grace_until is not None and now < key.grace_until:
            return
        raise AuthenticationError("this API key was rotated and its grace period has ended")
    raise AuthenticationError(INVALID)


def rotated(key: VirtualKey, secret: str, *, now: float, grace_seconds: float) -> VirtualKey:
    """``key`` with ``secret`` as its current secret; the old one stays valid for ``grace_seconds``.

    A revoked or expired key is refused (409): its new secret could never work, and handing one
    out would look like a way back.
    """
    if key.revoked_at is not None:
        raise Conflict(f"key {key.id} is revoked and cannot be rotated", code="key_revoked", param="key_id")
    if key.expires_at is not None and key.expires_at <= now:
        raise Conflict(f"key {key.id} has expired and cannot be rotated", code="key_expired", param="key_id")
    return msgspec.structs.replace(
        key,
        hash=hash_secret(secret),
        display=display_prefix(secret),
        previous_hash=key.hash,
        grace_until=now + grace_seconds,
    )


def revoked(key: VirtualKey, *, now: float) -> VirtualKey:
    """``key`` revoked at ``now``; a key already revoked keeps its first revocation time."""
    if key.revoked_at is not None:
        return key
    return msgspec.structs.replace(key, revoked_at=now)
