"""``corb admin`` and ``corb api``: web credentials, made on the command line and shown once.

There is no default password anywhere: the first admin exists only once someone with shell access
runs ``corb admin create``. Only hashes are stored, so a lost password or token is replaced, not read.
"""

from __future__ import annotations

import click


def _services():  # noqa: ANN202 - bot.services.Services, imported late to keep --help fast
    from bot.services import services

    return services()


def register(main: click.Group) -> None:
    main.add_command(admin)
    main.add_command(api)


@click.group()
def admin() -> None:
    """Accounts that may sign in to the admin pages."""


@admin.command("create")
@click.argument("username")
@click.option("--reset", is_flag=True, help="Give an existing account a new password (ends its sessions).")
def admin_create(username: str, reset: bool) -> None:
    """Create USERNAME with a generated password, printed once."""
    from sqlalchemy import select

    from bot.admin.auth import generate_password, hash_password  # argon2: only when needed
    from bot.models import AdminAccount

    username = username.strip()
    if not username or len(username) > 64:
        raise click.BadParameter("1 to 64 characters", param_hint="USERNAME")
    password = generate_password()
    with _services().session() as db:
        account = db.scalars(select(AdminAccount).where(AdminAccount.username == username)).first()
        if account is not None and not reset:
            raise click.ClickException(f"{username} exists; use --reset to give it a new password")
        if account is None:
            db.add(AdminAccount(username=username, password_hash=hash_password(password)))
        else:
            account.password_hash = hash_password(password)
    click.echo(f"{'Reset' if account else 'Created'} admin {username}. Password (shown once, store it now):")
    click.echo(password)


@admin.command("list")
def admin_list() -> None:
    """Admin usernames."""
    from sqlalchemy import select

    from bot.models import AdminAccount

    with _services().session() as db:
        for account in db.scalars(select(AdminAccount).order_by(AdminAccount.username)):
            click.echo(f"{account.username}\tcreated {account.created_at:%Y-%m-%d %H:%M}")


@admin.command("delete")
@click.argument("username")
def admin_delete(username: str) -> None:
    """Remove USERNAME's account (its sessions end at their next request)."""
    from sqlalchemy import delete

    from bot.models import AdminAccount

    with _services().session() as db:
        removed = db.execute(delete(AdminAccount).where(AdminAccount.username == username)).rowcount
    if not removed:
        raise click.ClickException(f"no admin {username}")
    click.echo(f"Removed admin {username}.")


@click.group()
def api() -> None:
    """The REST API under /api/."""


@api.group("token")
def token() -> None:
    """Bearer tokens for the API."""


@token.command("create")
@click.argument("name")
def token_create(name: str) -> None:
    """Create a token called NAME, printed once (only its hash is stored)."""
    from bot.admin.auth import generate_api_token, hash_api_token
    from bot.models import ApiToken

    name = name.strip()
    if not name or len(name) > 64:
        raise click.BadParameter("1 to 64 characters", param_hint="NAME")
    value = generate_api_token()
    with _services().session() as db:
        db.add(ApiToken(name=name, token_hash=hash_api_token(value)))
    click.echo(f"Created API token {name}. Send it as 'Authorization: Bearer <token>' (shown once):")
    click.echo(value)


@token.command("list")
def token_list() -> None:
    """Token names and when each was last used."""
    from sqlalchemy import select

    from bot.models import ApiToken

    with _services().session() as db:
        for row in db.scalars(select(ApiToken).order_by(ApiToken.id)):
            used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
            click.echo(f"{row.id}\t{row.name}\tlast used {used}")


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke every token called NAME."""
    from sqlalchemy import delete

    from bot.models import ApiToken

    with _services().session() as db:
        removed = db.execute(delete(ApiToken).where(ApiToken.name == name)).rowcount
    if not removed:
        raise click.ClickException(f"no token {name}")
    click.echo(f"Revoked {removed} token(s) called {name}.")
