"""A multi-tenant schema that is not the billing database's: users shared between tenants
through a membership table, admin rights in role tables scoped by tenant, and a super admin
declared by a role with no scope. Written with SQLAlchemy Core so it loads on every dialect.

The people, as the tests use them (every password is PASSWORD):
  alice  member of Acme and Beta, admin of both: the login asks which one
  bob    member of Acme only, admin of Acme (in LEGACY the users table says Beta: ignored)
  carol  member of Beta, holds only the 'clerk' role there: refused
  dave   holds 'admin' with no scope: an admin of nothing, never a super admin
  root   holds 'super_admin' with no scope: the one super admin the mapping declares
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    insert,
)

from desktop_backup.config import SchemaMapping
from tests.auth_support import php_bcrypt

PASSWORD = "members-pass-1"
ACME, BETA = 1, 2

MAPPING = SchemaMapping(
    tenant_table="tenants",
    tenant_column="tenant_id",
    users_table="users",
    user_id_column="id",
    membership_table="user_tenant",
    membership_user_column="user_id",
    membership_tenant_column="tenant_id",
    role_assignments_table="assigned_roles",
    role_assignment_user_column="user_id",
    role_assignment_role_column="role_id",
    roles_table="roles",
    role_id_column="id",
    role_name_column="name",
    role_scope_column="scope",
    admin_roles=("admin",),
    super_admin_role="super_admin",
)

USERS = {"alice": 1, "bob": 2, "carol": 3, "dave": 4, "root": 5}
MEMBERS = [("alice", ACME), ("alice", BETA), ("bob", ACME), ("carol", BETA), ("dave", ACME)]
# (role id, name, scope): scope is the tenant's id as text, no foreign key; NULL for none.
ROLES = [(1, "admin", str(ACME)), (2, "admin", str(BETA)), (3, "clerk", str(BETA)),
         (4, "admin", None), (5, "super_admin", None)]
HELD = [("alice", 1), ("alice", 2), ("bob", 1), ("carol", 3), ("dave", 4), ("root", 5)]
CUSTOMERS = {ACME: ["Acme Pharmacy", "Acme Clinic"], BETA: ["Beta Drugs"]}


def schema(*, legacy_tenant_column: bool = False) -> MetaData:
    """The tables; with `legacy_tenant_column` the users table also has a tenant_id that
    says nothing true (bob's points at Beta), which the mapping's membership table overrides."""
    meta = MetaData()
    Table("tenants", meta, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("code", String(20), nullable=False), Column("name", String(100)),
          Column("status", String(20), nullable=False))
    user_columns = [Column("id", Integer, primary_key=True, autoincrement=False),
                    Column("username", String(50), nullable=False),
                    Column("email", String(100)),
                    Column("password", String(255), nullable=False),
                    Column("full_name", String(100))]
    if legacy_tenant_column:
        user_columns.append(Column("tenant_id", Integer))  # no foreign key, never maintained
    Table("users", meta, *user_columns)
    Table("user_tenant", meta,
          Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
          Column("tenant_id", Integer, ForeignKey("tenants.id"), primary_key=True))
    Table("roles", meta, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("name", String(50), nullable=False), Column("scope", String(20)))
    Table("assigned_roles", meta,
          Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
          Column("role_id", Integer, ForeignKey("roles.id"), primary_key=True))
    Table("customers", meta, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
          Column("name", String(100), nullable=False))
    Table("invoices", meta, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
          Column("total", Numeric(10, 2), nullable=False))
    return meta


def load_membership_schema(url: str, *, legacy_tenant_column: bool = False) -> None:
    """Create the schema in the empty database at `url` and fill it."""
    meta = schema(legacy_tenant_column=legacy_tenant_column)
    t = meta.tables
    hashed = php_bcrypt(PASSWORD)
    engine = create_engine(url)
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(t["tenants"]), [
                {"id": ACME, "code": "ACME", "name": "Acme Health", "status": "active"},
                {"id": BETA, "code": "BETA", "name": "Beta Pharma", "status": "active"}])
            users = []
            for name, user_id in USERS.items():
                row = {"id": user_id, "username": name, "email": f"{name}@example.test",
                       "password": hashed, "full_name": name.title()}
                if legacy_tenant_column:
                    row["tenant_id"] = BETA if name == "bob" else None
                users.append(row)
            conn.execute(insert(t["users"]), users)
            conn.execute(insert(t["user_tenant"]), [
                {"user_id": USERS[name], "tenant_id": tenant} for name, tenant in MEMBERS])
            conn.execute(insert(t["roles"]), [
                {"id": role_id, "name": name, "scope": scope} for role_id, name, scope in ROLES])
            conn.execute(insert(t["assigned_roles"]), [
                {"user_id": USERS[name], "role_id": role_id} for name, role_id in HELD])
            customers, invoices = [], []
            for tenant, names in CUSTOMERS.items():
                for name in names:
                    customer_id = len(customers) + 1
                    customers.append({"id": customer_id, "tenant_id": tenant, "name": name})
                    invoices.append({"id": customer_id, "customer_id": customer_id,
                                     "total": 10 * customer_id})
            conn.execute(insert(t["customers"]), customers)
            conn.execute(insert(t["invoices"]), invoices)
    finally:
        engine.dispose()
