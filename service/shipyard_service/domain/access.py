"""Who may do what in a project: the one access rule of the platform.

Roles, each including the one before:

    viewer   reads everything in the project's environments (env-var names, not values)
    editor   creates, runs, deploys and deletes objects; writes the data store; sees and
             changes environment variables
    admin    the project's settings, environments, members, and the project's deletion

Platform admins (`User.is_admin`) create users and projects and hold the admin role in
every project. A user without a role in a project is told the project does not exist (404),
so a non-member cannot even learn which names are taken; a member whose role is too low
gets 403.
"""

from __future__ import annotations

import enum

from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..store.db import database
from ..store.models import Environment, Membership, Project, User
from .auth import Principal


class Role(enum.IntEnum):
    VIEWER = 1
    EDITOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_NAMES = tuple(r.label for r in Role)


def parse_role(value: object) -> Role:
    if not isinstance(value, str) or value.strip().lower() not in ROLE_NAMES:
        raise BadRequest(f"Unknown role {value!r}: use one of {', '.join(ROLE_NAMES)}",
                         {"field": "role", "allowed": list(ROLE_NAMES)})
    return Role[value.strip().upper()]


def role_of(who: Principal, project: Project | int) -> Role | None:
    """The caller's role in the project; None for a non-member."""
    if is_platform_admin(who):
        return Role.ADMIN
    row = Membership.get_or_none((Membership.user == who.user_id) & (Membership.project == project))
    return Role[row.role.upper()] if row is not None else None


def is_platform_admin(who: Principal) -> bool:
    """An execution acts for its user: a platform admin's execution counts as one."""
    return who.is_admin or (who.in_execution and User.select().where(
        (User.id == who.user_id) & User.is_admin).exists())


def _hidden(project_name: str, environment_name: str | None = None) -> NotFound:
    # The very answer an unknown name gets (domain/projects.get_project / get_environment).
    if environment_name is None:
        return NotFound(f"Project '{project_name}' not found", {"project_name": project_name})
    return NotFound(
        f"Environment '{project_name}/{environment_name}' not found",
        {"project_name": project_name, "environment_name": environment_name},
    )


def check(role: Role | None, needed: Role, project_name: str,
          environment_name: str | None = None) -> Role:
    """The rule itself: no role → 404 (as if absent), a lower role → 403."""
    if role is None:
        raise _hidden(project_name, environment_name)
    if role < needed:
        raise Forbidden(f"This needs the {needed.label} role in project '{project_name}' "
                        f"(yours: {role.label})",
                        {"project_name": project_name, "role": role.label,
                         "needed": needed.label})
    return role


def project_for(who: Principal, project_name: str, needed: Role) -> tuple[Project, Role]:
    project = Project.get_or_none(Project.name == project_name)
    if project is None:
        raise _hidden(project_name)
    return project, check(role_of(who, project), needed, project_name)


def environment_for(who: Principal, project_name: str, environment_name: str,
                    needed: Role) -> tuple[Environment, Role]:
    environment = (
        Environment.select(Environment, Project)
        .join(Project)
        .where((Project.name == project_name) & (Environment.name == environment_name))
        .first()
    )
    if environment is None:
        raise _hidden(project_name, environment_name)
    role = check(role_of(who, environment.project), needed, project_name, environment_name)
    return environment, role


def visible_projects(who: Principal) -> list[Project]:
    query = Project.select().order_by(Project.name)
    if not who.is_admin:
        query = query.join(Membership).where(Membership.user == who.user_id)
    return list(query)


def visible_user(who: Principal, user_id: str) -> User:
    """A user the caller may read: themselves; anyone, for a platform admin; else someone
    sharing a project with the caller — what `created_by` fields of the caller's projects
    name, which the official client's `get_user` reads. Platform admins hold a role in every
    project, so they share each of the caller's. Anyone else: 404, as for an unknown id."""
    user = User.get_or_none(User.id == user_id)
    if user is not None and user.id != who.user_id and not is_platform_admin(who):
        mine = Membership.select(Membership.project).where(Membership.user == who.user_id)
        shared = (user.is_admin and mine.exists()) or Membership.select().where(
            (Membership.user == user.id) & Membership.project.in_(mine)).exists()
        if not shared:
            user = None
    if user is None:
        raise NotFound(f"User '{user_id}' not found", {"user_id": user_id})
    return user


def require_platform_admin(who: Principal, what: str) -> None:
    if not who.is_admin or who.in_execution:
        raise Forbidden(f"{what} is for platform admins")


# Membership management --------------------------------------------------------------------
def members(project: Project) -> list[dict]:
    rows = (Membership.select(Membership, User).join(User)
            .where(Membership.project == project).order_by(User.email))
    return [member_view(r.user, Role[r.role.upper()]) for r in rows]


def member_view(user: User, role: Role) -> dict:
    return {"user_id": user.id, "email": user.email, "name": user.name, "role": role.label,
            "is_platform_admin": bool(user.is_admin), "disabled": bool(user.disabled)}


def set_role(project: Project, user: User, role: Role) -> dict:
    """Add the user to the project with this role, or change the role it has."""
    with database.atomic():
        updated = (Membership.update(role=role.label)
                   .where((Membership.project == project) & (Membership.user == user.id))
                   .execute())
        if not updated:
            Membership.create(project=project, user=user.id, role=role.label)
        _keep_an_admin(project)
    return member_view(user, role)


def remove_member(project: Project, user: User) -> dict:
    row = Membership.get_or_none((Membership.project == project) & (Membership.user == user.id))
    if row is None:
        raise NotFound(f"'{user.email}' is not a member of project '{project.name}'",
                       {"email": user.email, "project_name": project.name})
    with database.atomic():
        row.delete_instance()
        _keep_an_admin(project)
    return {"email": user.email, "project_name": project.name}


def _keep_an_admin(project: Project) -> None:
    """A project keeps someone who can manage it, unless platform admins exist (they can)."""
    if User.select().where(User.is_admin & ~User.disabled).exists():
        return
    if not Membership.select().where((Membership.project == project)
                                     & (Membership.role == Role.ADMIN.label)).exists():
        raise Conflict(f"Project '{project.name}' would have no admin left",
                       {"project_name": project.name})
