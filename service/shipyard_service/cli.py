"""`shipyard serve` and `shipyard admin ...`."""

from __future__ import annotations

import argparse
import json
import sys

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
    init_db(settings.database_url)
    creds = ensure_defaults(settings)

    def announce() -> None:
        print(
            "Shipyard is up\n"
            f"  web UI:           {creds['ui_url']}\n"
            f"  environment URL:  {creds['environment_url']}\n"
            f"  SDK token:        {creds['sdk_token']}\n"
            f"  UI login:         {creds['admin_email']} (password in "
            f"{settings.data_dir / 'credentials.json'})",
            flush=True,
        )

    ShipyardServer(settings, on_ready=announce).run()
    return 0


def admin(args) -> int:
    from .bootstrap import ADMIN_EMAIL, read_credentials, write_credentials
    from .domain import auth, projects
    from .store import db_session, init_db
    from .store.models import User

    settings = _settings(args)
    init_db(settings.database_url)
    with db_session():
        if args.admin_cmd == "create-user":
            user, token = auth.create_user(args.name, args.email, args.password)
            out = {"id": user.id, "email": user.email, "sdk_token": token}
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
            project = projects.create_project(args.name)
            projects.create_environment(project, args.environment)
            out = {"project": project.name, "environment": args.environment}
        elif args.admin_cmd == "create-environment":
            env = projects.create_environment(projects.get_project(args.project), args.name)
            out = {"project": args.project, "environment": env.name}
        else:  # pragma: no cover - argparse restricts the choices
            raise SystemExit(2)
    print(json.dumps(out))
    return 0


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
    r = asub.add_parser("regenerate-sdk-token")
    r.add_argument("--email", required=True)
    pw = asub.add_parser("set-password")
    pw.add_argument("--email", required=True)
    pw.add_argument("--password", required=True)
    cp = asub.add_parser("create-project")
    cp.add_argument("name")
    cp.add_argument("--environment", default="dev")
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
