import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from psycopg import sql

AUDIT_TABLE = "portal_auditevent"


class Command(BaseCommand):
    help = (
        "Gives the application's own PostgreSQL role what it needs and nothing more: reads and writes "
        "on every table, but only SELECT and INSERT on the audit trail, and no table of its own, so "
        "it can neither TRUNCATE the trail nor switch its guard off. Run as the role that owns the "
        "tables (the one migrations run as), after every `migrate`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--app-role", required=True, help="The role web, workers and beat connect as.")
        parser.add_argument(
            "--password-env",
            help="Create the role when missing (needs CREATEROLE), with the password this variable holds.",
        )

    def handle(self, *args, app_role, password_env=None, **options):
        if connection.vendor != "postgresql":
            raise CommandError("database_roles is for PostgreSQL.")
        role = sql.Identifier(app_role)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            owner, _ = cursor.fetchone()
            if owner == app_role:
                raise CommandError(
                    f"{app_role} is the role running this command, the tables' owner: the application "
                    "must connect as another role."
                )
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [app_role])
            found = cursor.fetchone()
            if found is None:
                password = os.environ.get(password_env or "", "")
                if not password:
                    raise CommandError(
                        f"There is no role {app_role}: create it, or pass --password-env naming a "
                        "variable that holds its password."
                    )
                cursor.execute(
                    _text(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password)))
                )
            elif found[0]:
                raise CommandError(f"{app_role} is a superuser: it could switch the audit trail's guard off.")
            database = sql.Identifier(connection.settings_dict["NAME"])
            for statement in [
                "GRANT CONNECT ON DATABASE {database} TO {role}",
                "GRANT USAGE ON SCHEMA public TO {role}",
                "REVOKE CREATE ON SCHEMA public FROM {role}",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
                "REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {audit} FROM {role}",
            ]:
                cursor.execute(
                    _text(
                        sql.SQL(statement).format(
                            database=database, role=role, audit=sql.Identifier(AUDIT_TABLE)
                        )
                    )
                )
            cursor.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s", [app_role]
            )
            owned = cursor.fetchone()[0]
        if owned:
            raise CommandError(
                f"{app_role} owns {owned} tables: give them to {owner} (ALTER TABLE ... OWNER TO) and run "
                "this again."
            )
        self.stdout.write(
            f"{app_role} may read and write every table, and only read and append to {AUDIT_TABLE}."
        )


def _text(statement: sql.Composable) -> str:
    """The statement with its names quoted as PostgreSQL quotes them."""
    return statement.as_string(connection.connection)
