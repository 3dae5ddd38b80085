"""``corb admin create`` and ``corb api token create``: printed once, stored only as hashes."""

from __future__ import annotations

import hashlib
from typing import Any

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.cli import main
from bot.models import AdminAccount, ApiToken
from tests.web.conftest import login


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_admin_create_prints_a_password_once_and_stores_its_argon2_hash(services: Any,
                                                                        client: FlaskClient) -> None:
    result = run("admin", "create", "ada")
    assert result.exit_code == 0 and "shown once" in result.output
    password = result.output.strip().splitlines()[-1]
    assert len(password) == 20
    with services.session() as db:
        stored = db.scalars(select(AdminAccount)).one()
    assert stored.username == "ada" and stored.password_hash.startswith("$argon2id$")
    assert password not in stored.password_hash
    assert login(client, password).status_code == 302  # the printed password signs in

    again = CliRunner().invoke(main, ["admin", "create", "ada"])
    assert again.exit_code != 0 and "use --reset" in again.output
    reset = run("admin", "create", "ada", "--reset")
    new_password = reset.output.strip().splitlines()[-1]
    assert new_password != password
    assert client.get("/admin/").status_code == 302  # the old session ended with the old password
    assert login(client, new_password).status_code == 302
    assert "ada" in run("admin", "list").output
    assert run("admin", "delete", "ada").exit_code == 0
    assert client.get("/admin/").status_code == 302


def test_api_token_create_prints_the_token_once_and_stores_its_sha256(services: Any,
                                                                      client: FlaskClient) -> None:
    result = run("api", "token", "create", "grafana")
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("corb_") and len(token) > 40
    with services.session() as db:
        row = db.scalars(select(ApiToken)).one()
    assert row.name == "grafana" and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert client.get("/api/cameras", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert "grafana" in run("api", "token", "list").output
    assert run("api", "token", "revoke", "grafana").exit_code == 0
    assert client.get("/api/cameras", headers={"Authorization": f"Bearer {token}"}).status_code == 401
