"""The `feedback` command: serve, migrate, demo, and the people directory."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, NoReturn

import typer

from feedback import migrate as migrations
from feedback.errors import FeedbackError
from feedback.models.people import Role
from feedback.settings import Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
users = typer.Typer(no_args_is_help=True, help="Add and list people.")
app.add_typer(users, name="users")


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _settings() -> Settings:
    try:
        return load_settings()
    except FeedbackError as exc:
        fail(exc.detail)


def _migrate(settings: Settings) -> None:
    try:
        migrations.upgrade(settings.database_url)
    except Exception as exc:  # a database that cannot be reached or written
        # SQLAlchemy appends a "Background on this error" line; the first line says it all.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        fail(
            f"could not migrate {settings.database_url.split('@')[-1]}: {type(exc).__name__}: {reason}"
        )


def _check_log_format(settings: Settings) -> None:
    from feedback.ops.logs import resolve_format

    try:
        resolve_format(settings.log_format)
    except ValueError as exc:
        fail(str(exc))


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import contextlib

    import uvicorn

    from feedback.app import create_app
    from feedback.ops.backup import serving_lock
    from feedback.ops.logs import configure_logging

    if workers > 1 and settings.broker_url.startswith("memory"):
        fail(
            f"--workers {workers} needs a shared broker: set FEEDBACK_BROKER_URL to redis://host:port/db "
            "or postgresql://... (memory:// reaches only the sockets of its own process)"
        )
    try:
        configure_logging(settings.log_format)
    except ValueError as exc:
        fail(str(exc))
    options: dict[str, object] = {
        "host": host,
        "port": port,
        "ws_max_size": 64 * 1024,
        "ws_ping_interval": 20,
        "ws_ping_timeout": 20,
        "ws_per_message_deflate": False,
        "proxy_headers": True,
        # On SIGTERM: stop accepting, let in-flight requests finish (up to this long), close
        # sockets with 1012 so clients reconnect elsewhere and resume by seq.
        "timeout_graceful_shutdown": 10,
        # uvicorn's access log prints raw paths, reviewer tokens included; the app logs
        # each request itself with its route template. Logging is configured above.
        "access_log": False,
        "log_config": None,
    }
    lock = serving_lock(settings.sqlite_path) if settings.sqlite_path else contextlib.nullcontext()
    with lock:
        if workers > 1:
            # Workers are separate processes that import the app: they need an import string.
            uvicorn.run("feedback.app:app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]
            return
        try:
            application = create_app(settings)
        except FeedbackError as exc:
            fail(exc.detail)
        uvicorn.run(application, **options)  # type: ignore[arg-type]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Worker processes; more than one needs a redis:// or postgresql:// broker."
        ),
    ] = 1,
) -> None:
    """Apply pending migrations (once, before any worker starts), then serve the app."""
    settings = _settings()
    _check_log_format(settings)
    if settings.secret_key is None:
        try:
            settings.resolved_secret_key()  # generated once here, not raced by workers
        except FeedbackError as exc:
            fail(exc.detail)
    _migrate(settings)
    _serve(settings, host, port, workers)


@app.command()
def backup(
    path: Annotated[str, typer.Argument(help="Where to write the backup (must not exist).")],
) -> None:
    """Copy the SQLite database (and its generated secret key) while the server runs."""
    from pathlib import Path

    from feedback.ops.backup import BackupError
    from feedback.ops.backup import backup as run_backup

    settings = _settings()
    if settings.sqlite_path is None:
        fail(
            "feedback backup copies SQLite databases; for PostgreSQL use pg_dump -Fc "
            "(see docs/deploy.md, Backups)"
        )
    try:
        written = run_backup(settings.sqlite_path, Path(path))
    except (BackupError, OSError) as exc:
        fail(str(exc))
    for file in written:
        typer.echo(f"wrote {file}")


@app.command()
def restore(
    path: Annotated[str, typer.Argument(help="A file written by `feedback backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already holds data.")
    ] = False,
) -> None:
    """Replace the SQLite database with a backup. Refuses while `feedback serve` runs."""
    from pathlib import Path

    from feedback.ops.backup import BackupError
    from feedback.ops.backup import restore as run_restore

    settings = _settings()
    if settings.sqlite_path is None:
        fail(
            "feedback restore restores SQLite backups; for PostgreSQL use pg_restore (see docs/deploy.md)"
        )
    try:
        kept = run_restore(Path(path), settings.sqlite_path, force=force)
    except (BackupError, OSError) as exc:
        fail(str(exc))
    if kept is not None:
        typer.echo(f"kept the replaced database at {kept}")
    # A backup from an older release is brought to this release's schema.
    _migrate(settings)
    typer.echo(f"restored {path} into {settings.sqlite_path}")


@app.command()
def migrate() -> None:
    """Apply pending migrations."""
    settings = _settings()
    _migrate(settings)
    typer.echo("database is at the newest schema")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve after seeding.")
    ] = True,
) -> None:
    """Seed a demo organisation when the database is empty, then serve."""
    from feedback.demo.seed import DEMO_PASSWORD, seed_if_empty

    settings = _settings()
    _migrate(settings)
    seeded, logins = asyncio.run(seed_if_empty(settings))
    typer.echo(
        "Seeded the demo organisation."
        if seeded
        else "The database already has people; not seeding."
    )
    typer.echo(
        f"Log in at {settings.base_url}/login with any of these (password: {DEMO_PASSWORD}):"
    )
    for role, email, name in logins:
        typer.echo(f"  {role:<9} {email:<28} {name}")
    if settings.smtp_url is None:
        typer.echo(
            "FEEDBACK_SMTP_URL is unset: mail stays in the outbox; the admin sees it at /admin/outbox."
        )
    if serve_after:
        _serve(settings, host, port)


@users.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="Their email address, used to log in.")],
    name: Annotated[str, typer.Option("--name", help="Their full name.")],
    role: Annotated[
        str, typer.Option("--role", help="employee, manager, hr or admin.")
    ] = "employee",
    manager: Annotated[str | None, typer.Option("--manager", help="Their manager's email.")] = None,
    password: Annotated[str | None, typer.Option("--password", help="Their password.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Add a person to the directory."""
    from feedback.db import Database
    from feedback.people import service

    try:
        parsed_role = Role(role)
    except ValueError:
        fail(f"unknown role {role!r}; use one of employee, manager, hr, admin")
    if password is not None and password_stdin:
        fail("use either --password or --password-stdin, not both")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    settings = _settings()
    _migrate(settings)

    async def add() -> str:
        db = Database(settings)
        try:
            async with db.transaction() as session:
                person = await service.add_person(
                    session,
                    email=email,
                    name=name,
                    role=parsed_role,
                    manager_email=manager,
                    password=password,
                )
                return person.email
        finally:
            await db.dispose()

    try:
        added = asyncio.run(add())
    except FeedbackError as exc:
        fail(exc.detail)
    typer.echo(f"added {added} ({parsed_role.value})")


@users.command("list")
def users_list() -> None:
    """List everyone in the directory."""
    from feedback.db import Database
    from feedback.people import service

    settings = _settings()
    _migrate(settings)

    async def rows() -> list[tuple[str, str, str, str]]:
        db = Database(settings)
        try:
            async with db.transaction(write=False) as session:
                people = await service.list_people(session)
                by_id = {p.id: p.email for p in people}
                return [
                    (
                        p.email,
                        p.name,
                        p.role.value,
                        by_id.get(p.manager_id, "") if p.manager_id else "",
                    )
                    for p in people
                ]
        finally:
            await db.dispose()

    for email, name, role, manager in asyncio.run(rows()):
        typer.echo(f"{email}\t{name}\t{role}\t{manager}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
