"""The scope decisions as a table (pure functions, no server)."""

from __future__ import annotations

import pytest

from llmrelay.errors import InvalidRequest, PermissionDenied
from llmrelay.keys.scopes import (
    capped,
    check_address,
    check_admin,
    check_route,
    checked_ips,
    checked_routes,
    checked_scopes,
    networks,
)


@pytest.mark.parametrize(
    ("asked", "cap", "runs_with"), [(None, None, None), (7, None, 7), (None, 5, 5), (3, 5, 3), (5, 5, 5)]
)
def test_max_tokens_under_a_cap(asked: int | None, cap: int | None, runs_with: int | None) -> None:
    assert capped(asked, cap) == runs_with


def test_max_tokens_above_the_cap_is_refused() -> None:
    with pytest.raises(PermissionDenied) as denied:
        capped(6, 5)
    assert denied.value.code == "max_tokens_exceeded" and denied.value.param == "max_tokens"


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        ("10.1.2.3", True),
        ("2001:db8::1", True),
        ("11.0.0.1", False),
        ("::1", False),
        (None, False),
        ("x", False),
    ],
)
def test_addresses_against_networks(client: str | None, allowed: bool) -> None:
    nets = networks(["10.0.0.0/8", "2001:db8::/32"])
    if allowed:
        check_address(nets, client)
    else:
        with pytest.raises(PermissionDenied, match="address"):
            check_address(nets, client)
    check_address((), client)  # no networks: anywhere


@pytest.mark.parametrize(
    ("scopes", "write", "allowed"),
    [
        (("admin",), True, True),
        (("admin",), False, True),
        (("admin:read",), False, True),
        (("admin:read",), True, False),
        ((), False, False),
    ],
)
def test_admin_scopes(scopes: tuple[str, ...], write: bool, allowed: bool) -> None:
    if allowed:
        check_admin(scopes, write=write)
    else:
        with pytest.raises(PermissionDenied) as denied:
            check_admin(scopes, write=write)
        assert denied.value.code == "insufficient_scope"


def test_routes() -> None:
    check_route((), "/v1/messages")
    check_route(("/v1/messages",), "/v1/messages")
    with pytest.raises(PermissionDenied):
        check_route(("/v1/chat/completions",), "/v1/messages")


def test_fields_are_checked_when_a_key_is_made() -> None:
    assert checked_scopes([" admin ", "admin", ""]) == ("admin",)
    assert checked_routes(["/v1/models"]) == ("/v1/models",)
    assert checked_ips(["10.0.0.0/8", "::1"]) == ("10.0.0.0/8", "::1")
    bad_fields = [
        (lambda: checked_scopes(["root"]), "scopes"),
        (lambda: checked_routes(["/x"]), "routes"),
        (lambda: checked_ips(["10.0.0.1/8"]), "ips"),
    ]
    for bad, param in bad_fields:
        with pytest.raises(InvalidRequest) as err:
            bad()
        assert err.value.param == param
