"""`shipyard serve` and `shipyard admin ...`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import Settings


def _settings(args) -> Settings:
    return Settings.from_env(data_dir=args.data_dir, host=getattr(args, "host", None),
                             port=getattr(args, "port", None),
                             public_url=getattr(args, "public_url", None))


def serve(args) -> int:
    from .bootstrap import ensure_defaults
    from .server import ShipyardServer
    from .store import init_db

    settings = _settings(args)
    settings.load_or_create_secret()
    settings.remember_backends()  # `shipyard admin --data-dir` then finds the same store
    init_db(settings.database_url)
    creds = ensure_defaults(settings)

    # The initial admin password is printed once, at the first start; later it is only in
    # credentials.json (0600) or set with `shipyard admin set-password`.
    first_start = creds.get("password_shown") is False
    if first_start:
        from .bootstrap import write_credentials

        creds["password_shown"] = True
        write_credentials(settings, creds)
    password = (creds["admin_password"] if first_start
                else f"in {settings.data_dir / 'credentials.json'}")

    def announce() -> None:
        print(
            "Shipyard is up\n"
            f"  web UI:           {creds['ui_url']}\n"
            f"  control URL:      {creds['control_url']}\n"
            f"  environment URL:  {creds['environment_url']}\n"
            f"  SDK token:        {creds['sdk_token']}\n"
            f"  UI login:         {creds['admin_email']} / password {password}",
            flush=True,
        )

    ShipyardServer(settings, on_ready=announce).run()
    return 0


def admin(args) -> int:
    from .bootstrap import ADMIN_EMAIL, read_credentials, write_credentials
    from .crypto import configure as configure_secrets
    from .domain import auth, projects
    from .store import db_session, init_db
    from .store.models import User

    settings = _settings(args)
    if args.admin_cmd in ("backup", "restore"):
        from . import backup

        run = backup.backup if args.admin_cmd == "backup" else backup.restore
        print(json.dumps(run(settings, Path(args.folder))))
        return 0
    init_db(settings.database_url)
    # project deploy keys are sealed with the server's key
    configure_secrets(settings.data_dir, settings.encryption_key)
    with db_session():
        if args.admin_cmd == "project-settings":
            out = _project_settings(args, settings)
        elif args.admin_cmd == "create-user":
            user, token = auth.create_user(args.name, args.email, args.password,
                                           is_admin=args.platform_admin)
            out = {"id": user.id, "email": user.email, "sdk_token": token,
                   "is_platform_admin": user.is_admin}
        elif args.admin_cmd in ("set-role", "remove-member", "disable-user"):
            out = _access_command(args)
        elif args.admin_cmd == "regenerate-sdk-token":
            user = User.get_or_none(User.email == args.email)
            if user is None:
                raise SystemExit(f"No user with email {args.email}")
            token = auth.regenerate_sdk_token(user)
            creds = read_credentials(settings)
            if creds.get("admin_email", ADMIN_EMAIL) == user.email:
                creds["sdk_token"] = token
                write_credentials(settings, creds)
            out = {"email": user.email, "sdk_token": token}
        elif args.admin_cmd == "set-password":
            user = User.get_or_none(User.email == args.email)
            if user is None:
                raise SystemExit(f"No user with email {args.email}")
            auth.set_password(user, args.password)
            out = {"email": user.email}
        elif args.admin_cmd == "create-project":
            project = projects.create_project(args.name, _settings_changes(args))
            projects.create_environment(project, args.environment)
            out = {"project": project.name, "environment": args.environment}
        elif args.admin_cmd == "create-environment":
            env = projects.create_environment(projects.get_project(args.project), args.name)
            out = {"project": args.project, "environment": env.name}
        else:  # pragma: no cover - argparse restricts the choices
            raise SystemExit(2)
    print(json.dumps(out))
    return 0


def _access_command(args) -> dict:
    """set-role, remove-member, disable-user: the same domain calls as the HTTP routes."""
    from .domain import access, auth, projects

    if args.admin_cmd == "disable-user":
        return auth.user_admin_view(auth.set_disabled(auth.find_user(args.email)))
    project = projects.get_project(args.project)
    user = auth.find_user(args.email)
    if args.admin_cmd == "set-role":
        return {"project": project.name,
                **access.set_role(project, user, access.parse_role(args.role))}
    return access.remove_member(project, user)


LIST_SETTINGS = ("included_folders", "system_dependencies")


def _settings_changes(args) -> dict:
    """`--set key=value` (lists: comma-separated or JSON; empty value = null), `--unset key`,
    `--deploy-key-file PATH` (the key is read from a file so it never shows in `ps`)."""
    changes: dict = {}
    for item in getattr(args, "set", None) or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        key = key.strip()
        if key == "repository_deploy_key":
            raise SystemExit("give the deploy key with --deploy-key-file PATH")
        if value == "":
            changes[key] = None
        elif key in LIST_SETTINGS and value.lstrip().startswith("["):
            try:
                changes[key] = json.loads(value)
            except ValueError as exc:
                raise SystemExit(f"--set {key}: invalid JSON list ({exc})") from exc
        elif key in LIST_SETTINGS:
            changes[key] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            changes[key] = value
    for key in getattr(args, "unset", None) or []:
        changes[key] = None
    key_file = getattr(args, "deploy_key_file", None)
    if key_file:
        with open(key_file) as f:
            changes["repository_deploy_key"] = f.read()
    return changes


def _project_settings(args, settings: Settings) -> dict:
    from .domain import projects

    project = projects.get_project(args.name)
    changes = _settings_changes(args)
    if changes:
        project = projects.update_project_settings(project, changes)
    return projects.project_view(project, settings.public_url)


def _add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="language, repository_url, repository_branch, included_folders, "
                             "requirements_path, system_dependencies, dockerfile_path")
    parser.add_argument("--unset", action="append", metavar="KEY", help="reset a setting to null")
    parser.add_argument("--deploy-key-file", metavar="PATH",
                        help="the repository's private deploy key (stored encrypted)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shipyard", description="Shipyard MLOps platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the platform (API, runners, schedules)")
    p.add_argument("--data-dir", default=None, help="where state lives (default .data)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--public-url", default=None,
                   help="base URL clients and runners use (default http://HOST:PORT)")
    p.set_defaults(func=serve)

    a = sub.add_parser("admin", help="manage users, projects, environments")
    a.add_argument("--data-dir", default=None)
    asub = a.add_subparsers(dest="admin_cmd", required=True)
    u = asub.add_parser("create-user")
    u.add_argument("--name", required=True)
    u.add_argument("--email", required=True)
    u.add_argument("--password", default=None)
    u.add_argument("--platform-admin", action="store_true",
                   help="a platform admin (users, projects, admin of every project); "
                        "without it, a plain user with no project until given a role")
    sr = asub.add_parser("set-role", help="give a user a role in a project (adds the member)")
    sr.add_argument("project")
    sr.add_argument("email")
    sr.add_argument("role", choices=["viewer", "editor", "admin"])
    rm = asub.add_parser("remove-member", help="take a user out of a project")
    rm.add_argument("project")
    rm.add_argument("email")
    du = asub.add_parser("disable-user", help="stop a user from signing in or using tokens")
    du.add_argument("email")
    r = asub.add_parser("regenerate-sdk-token")
    r.add_argument("--email", required=True)
    pw = asub.add_parser("set-password")
    pw.add_argument("--email", required=True)
    pw.add_argument("--password", required=True)
    cp = asub.add_parser("create-project")
    cp.add_argument("name")
    cp.add_argument("--environment", default="dev")
    _add_settings_arguments(cp)
    ps = asub.add_parser("project-settings", help="show or edit a project's step defaults")
    ps.add_argument("name")
    _add_settings_arguments(ps)
    bk = asub.add_parser("backup", help="a consistent copy of the platform, taken while it runs")
    bk.add_argument("folder", help="a new folder for the backup")
    rs = asub.add_parser("restore", help="bring a stopped server back to a backup")
    rs.add_argument("folder", help="the backup's folder")
    ce = asub.add_parser("create-environment")
    ce.add_argument("project")
    ce.add_argument("name")
    a.set_defaults(func=admin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import ShipyardError

    try:
        return args.func(args)
    except ShipyardError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
