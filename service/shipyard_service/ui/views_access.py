"""Members and roles of a project, the platform's users, and deleting a project."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from ..domain import access, auth, browse
from ..domain.access import Role
from ..domain.project_deletion import check_confirmation, delete_project
from ..errors import ShipyardError
from ..store.models import Membership, Project
from .blueprint import bp
from .context import caller, place
from .services import services
from .views_home import _flash_outcome


@bp.route("/projects/<project_name>/members", methods=["GET", "POST"])
def members(project_name: str):
    """GET lists the members (any member); POST sets a user's role (project admins)."""
    here = place(project_name, needed=Role.ADMIN if request.method == "POST" else None)
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()

        def set_role() -> None:
            role = access.parse_role(request.form.get("role"))
            access.set_role(here.project, auth.find_user(email), role)

        _flash_outcome(set_role, f"'{email}' is now {request.form.get('role')} of "
                                 f"{project_name}.")
        return redirect(url_for("ui.members", project_name=project_name))
    return render_template("members.html", members=access.members(here.project),
                           roles=access.ROLE_NAMES, **here.template_args("members"))


@bp.route("/projects/<project_name>/members/remove", methods=["POST"])
def remove_member(project_name: str):
    here = place(project_name, needed=Role.ADMIN)
    email = (request.form.get("email") or "").strip()
    _flash_outcome(lambda: access.remove_member(here.project, auth.find_user(email)),
                   f"'{email}' removed from {project_name}.")
    return redirect(url_for("ui.members", project_name=project_name))


@bp.route("/projects/<project_name>/delete", methods=["GET", "POST"], endpoint="delete_project")
def delete_project_page(project_name: str):
    """A confirmation page; the POST must repeat the project's name."""
    here = place(project_name, needed=Role.ADMIN)
    error = None
    if request.method == "POST":
        try:
            check_confirmation(here.project, (request.form.get("confirm") or "").strip())
            delete_project(services(), here.project)
        except ShipyardError as exc:
            error = exc.message
        else:
            flash(f"Project '{project_name}' deleted.", "success")
            return redirect(url_for("ui.home"))
    rows = [{"environment": env, "counts": browse.environment_counts(env)}
            for env in here.environments]
    return render_template("delete_project.html", rows=rows, error=error,
                           **here.template_args("settings")), (400 if error else 200)


def _users_view(new_user: dict | None = None):
    roles: dict[str, list] = {}
    for row in (Membership.select(Membership.user, Membership.role, Project.name)
                .join(Project).order_by(Project.name).objects()):
        roles.setdefault(row.user_id, []).append((row.name, row.role))
    users = [{**auth.user_admin_view(u), "projects": roles.get(u.id, [])}
             for u in auth.list_users()]
    return render_template("users.html", users=users, new_user=new_user, nav="users")


@bp.route("/users", methods=["GET", "POST"])
def users():
    """Platform admins: every user, and a form creating one (its SDK token shown once)."""
    access.require_platform_admin(caller(), "Managing users")
    if request.method == "POST":
        form = request.form
        password = form.get("password") or None
        try:
            user, token = auth.create_user((form.get("name") or "").strip(),
                                           (form.get("email") or "").strip(), password,
                                           is_admin=form.get("platform_admin") == "1")
        except ShipyardError as exc:
            flash(exc.message, "error")
            return redirect(url_for("ui.users"))
        return _users_view({"email": user.email, "sdk_token": token})
    return _users_view()


@bp.route("/users/<user_id>/disabled", methods=["POST"])
def user_disabled(user_id: str):
    access.require_platform_admin(caller(), "Managing users")
    disabled = request.form.get("disabled") == "1"
    _flash_outcome(lambda: auth.set_disabled(auth.get_user(user_id), disabled),
                   "User disabled." if disabled else "User enabled.")
    return redirect(url_for("ui.users"))
