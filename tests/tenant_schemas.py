"""Multi-tenant schemas nobody here wrote the console for, each with its declared ownership
and a truth written in plain SQL, independently of the console's code: which rows of each
table a tenant owns. Used by tests/test_ownership.py and, with ``crater`` (logins through
memberships and roles), tests/test_foreign_schema_e2e.py.

- ``invoicing``: a crater-like schema. Tenant ``companies`` / ``company_id``; users are shared
  although they keep a legacy ``company_id``; roles owned by ``roles.scope`` with no foreign
  key; addresses owned either way (mixed); email logs through (mailable_type, mailable_id)
  to invoices, estimates or payments; a settings table nobody placed.
- ``tracker``: tenant ``tenants`` / ``tenant_id``; comments through a project OR a ticket
  (several parents); activity through (subject_type, subject_id) with the id kept as text,
  also pointing at comments (a declared table); a declared left-out audit trail.
- ``ledger``: tenant ``shops`` / ``shop_id``; accounts owned by ``owner_shop`` without a
  foreign key, ledgers and entries below them found by reflection, tags polymorphic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    text,
)

from desktop_backup.config import SchemaMapping
from desktop_backup.ownership import Ownership
from tests.auth_support import php_bcrypt

INVOICE, ESTIMATE, PAYMENT = "invoice", "estimate", "payment"


@dataclass
class TenantSchema:
    """A schema, its mapping (with the declared ownership), rows, and the truth per table:
    SQL with :t for the tenant's id, giving the ids of that tenant's rows."""

    name: str
    metadata: MetaData
    mapping: SchemaMapping
    rows: dict[str, list[dict]]
    truth: dict[str, str]  # owned table -> SELECT id ... WHERE ... :t (:t_text, as text)
    shared: list[str]
    left_out: list[str]
    tenants: tuple[int, int] = (1, 2)
    day: dict[str, list[dict]] = field(default_factory=dict)  # a normal day's new rows

    def create(self, engine) -> None:
        self.metadata.create_all(engine)
        with engine.begin() as conn:
            for table in self.metadata.sorted_tables:
                if self.rows.get(table.name):
                    conn.execute(insert(table), self.rows[table.name])

    def normal_day(self, engine) -> None:
        """What the shop does after the backup: new rows through parents and pairs."""
        with engine.begin() as conn:
            for table in self.metadata.sorted_tables:
                if self.day.get(table.name):
                    conn.execute(insert(table), self.day[table.name])


def _digest(rows) -> str:
    return hashlib.sha256("\n".join(sorted(repr(tuple(r)) for r in rows)).encode()).hexdigest()


def digests(engine, schema: TenantSchema, tenant: int) -> dict[str, dict[str, str]]:
    """Per owned table: the tenant's true rows and everyone else's; every shared table whole."""
    result: dict[str, dict[str, str]] = {"mine": {}, "others": {}, "shared": {}}
    with engine.connect() as conn:
        quote = conn.dialect.identifier_preparer.quote
        for name, truth in schema.truth.items():
            sql = truth.replace("TEXTID", _id_as_text(conn))
            ids = {r[0] for r in conn.execute(text(sql), _tenant(sql, tenant))}
            rows = conn.execute(text(f"SELECT * FROM {quote(name)} ORDER BY id")).all()
            result["mine"][name] = _digest(r for r in rows if r[0] in ids)
            result["others"][name] = _digest(r for r in rows if r[0] not in ids)
        for name in schema.shared:
            result["shared"][name] = _digest(conn.execute(text(f"SELECT * FROM {quote(name)}")))
    return result


def true_count(engine, schema: TenantSchema, tenant: int, table: str) -> int:
    with engine.connect() as conn:
        sql = schema.truth[table].replace("TEXTID", _id_as_text(conn))
        return len(conn.execute(text(sql), _tenant(sql, tenant)).all())


def _tenant(sql: str, tenant: int) -> dict:
    """The truth's parameters: the tenant's id, and as text where a truth compares text."""
    return {"t": tenant, **({"t_text": str(tenant)} if ":t_text" in sql else {})}


def _id_as_text(conn) -> str:
    """The id as text, in each server's own words (the test databases are unicode_ci)."""
    return {"mysql": "CAST(id AS CHAR) COLLATE utf8mb4_unicode_ci",
            "postgresql": "CAST(id AS VARCHAR)"}.get(conn.dialect.name, "CAST(id AS TEXT)")


def _id() -> Column:
    return Column("id", Integer, primary_key=True, autoincrement=False)


def _tenant_table(md: MetaData, name: str) -> None:
    Table(name, md, _id(), Column("name", String(50)), Column("code", String(20)))


def invoicing() -> TenantSchema:
    md = MetaData()
    _tenant_table(md, "companies")
    fk = lambda col, target, nullable=True: Column(  # noqa: E731
        col, Integer, ForeignKey(target), nullable=nullable)
    Table("users", md, _id(), Column("name", String(50)), Column("password", String(80)),
          fk("company_id", "companies.id"))
    Table("user_company", md, _id(), fk("user_id", "users.id", False),
          fk("company_id", "companies.id", False))
    Table("roles", md, _id(), Column("name", String(30)), Column("scope", Integer))
    Table("assigned_roles", md, _id(), fk("role_id", "roles.id", False),
          fk("user_id", "users.id", False))
    Table("currencies", md, _id(), Column("code", String(3)))
    Table("customers", md, _id(), fk("company_id", "companies.id", False),
          fk("currency_id", "currencies.id"), Column("name", String(50)))
    Table("addresses", md, _id(), fk("company_id", "companies.id"),
          fk("customer_id", "customers.id"), Column("line", String(80)))
    Table("invoices", md, _id(), fk("company_id", "companies.id", False),
          fk("customer_id", "customers.id"), Column("total", Integer))
    Table("estimates", md, _id(), fk("company_id", "companies.id", False),
          fk("customer_id", "customers.id"))
    Table("payments", md, _id(), fk("company_id", "companies.id", False),
          fk("invoice_id", "invoices.id"), Column("amount", Integer))
    Table("email_logs", md, _id(), Column("mailable_type", String(60)),
          Column("mailable_id", Integer), Column("subject", String(80)))
    Table("app_settings", md, _id(), Column("key", String(40)), Column("value", String(80)))
    ownership = Ownership.from_dict({
        "users": "shared",
        "roles": {"column": "scope"},
        "addresses": {"column": "company_id", "parents": ["customer_id -> customers.id"]},
        "email_logs": {"polymorphic": {"type": "mailable_type", "id": "mailable_id", "types": {
            INVOICE: "invoices", ESTIMATE: "estimates", PAYMENT: "payments"}}},
    })
    mapping = SchemaMapping(tenant_table="companies", tenant_column="company_id",
                            ownership=ownership)
    rows: dict[str, list[dict]] = {
        "companies": [{"id": 1, "name": "Acme", "code": "ACME"},
                      {"id": 2, "name": "Bolt", "code": "BOLT"}],
        "users": [{"id": u, "name": f"user{u}", "password": f"hash{u}", "company_id": 1 + u % 2}
                  for u in range(1, 5)],
        "user_company": [{"id": 1, "user_id": 1, "company_id": 1},
                         {"id": 2, "user_id": 1, "company_id": 2},
                         {"id": 3, "user_id": 2, "company_id": 2}],
        "roles": [{"id": 1, "name": "admin", "scope": 1}, {"id": 2, "name": "admin", "scope": 2}],
        "assigned_roles": [{"id": 1, "role_id": 1, "user_id": 1},
                           {"id": 2, "role_id": 2, "user_id": 1}],
        "currencies": [{"id": 1, "code": "EUR"}, {"id": 2, "code": "USD"}],
        "app_settings": [{"id": 1, "key": "theme", "value": "dark"}],
    }
    rows["customers"], rows["addresses"], rows["invoices"] = [], [], []
    rows["estimates"], rows["payments"], rows["email_logs"] = [], [], []
    for c in (1, 2):
        base = c * 100
        rows["addresses"].append({"id": base, "company_id": c, "customer_id": None,
                                  "line": f"HQ of {c}"})
        for n in range(1, 4):
            cid = base + n
            rows["customers"].append({"id": cid, "company_id": c, "currency_id": 1 + n % 2,
                                      "name": f"cust{cid}"})
            rows["addresses"].append({"id": cid, "company_id": None, "customer_id": cid,
                                      "line": f"street {cid}"})
            rows["invoices"].append({"id": cid, "company_id": c, "customer_id": cid,
                                     "total": n * 10})
            rows["estimates"].append({"id": cid, "company_id": c, "customer_id": cid})
            rows["payments"].append({"id": cid, "company_id": c, "invoice_id": cid,
                                     "amount": n})
            for k, (kind, _) in enumerate(((INVOICE, 0), (ESTIMATE, 0), (PAYMENT, 0))):
                rows["email_logs"].append({"id": cid * 10 + k, "mailable_type": kind,
                                           "mailable_id": cid, "subject": f"mail {cid}"})
    owned_by = "company_id = :t"
    truth = {
        "user_company": f"SELECT id FROM user_company WHERE {owned_by}",
        "roles": "SELECT id FROM roles WHERE scope = :t",
        "assigned_roles": "SELECT id FROM assigned_roles WHERE role_id IN "
                          "(SELECT id FROM roles WHERE scope = :t)",
        "customers": f"SELECT id FROM customers WHERE {owned_by}",
        "addresses": f"SELECT id FROM addresses WHERE {owned_by} OR customer_id IN "
                     f"(SELECT id FROM customers WHERE {owned_by})",
        "invoices": f"SELECT id FROM invoices WHERE {owned_by}",
        "estimates": f"SELECT id FROM estimates WHERE {owned_by}",
        "payments": f"SELECT id FROM payments WHERE {owned_by}",
        "email_logs": " UNION ".join(
            f"SELECT id FROM email_logs WHERE mailable_type = '{kind}'"
            f" AND mailable_id IN (SELECT id FROM {table} WHERE {owned_by})"
            for kind, table in ((INVOICE, "invoices"), (ESTIMATE, "estimates"),
                                (PAYMENT, "payments"))),
    }
    day = {"customers": [{"id": 150, "company_id": 1, "currency_id": 1, "name": "new"}],
           "addresses": [{"id": 150, "company_id": None, "customer_id": 150, "line": "new 1"},
                         {"id": 151, "company_id": None, "customer_id": 150, "line": "new 2"}],
           "invoices": [{"id": 150, "company_id": 1, "customer_id": 150, "total": 99}],
           "email_logs": [{"id": 1500, "mailable_type": INVOICE, "mailable_id": 150,
                           "subject": "new invoice"},
                          {"id": 1501, "mailable_type": INVOICE, "mailable_id": 150,
                           "subject": "reminder"}]}
    return TenantSchema("invoicing", md, mapping, rows, truth, ["users", "currencies"],
                        ["app_settings"], day=day)


def tracker() -> TenantSchema:
    md = MetaData()
    _tenant_table(md, "tenants")
    Table("countries", md, _id(), Column("name", String(40)))
    Table("projects", md, _id(), Column("tenant_id", Integer, ForeignKey("tenants.id")),
          Column("country_id", Integer, ForeignKey("countries.id")))
    Table("tickets", md, _id(), Column("tenant_id", Integer, ForeignKey("tenants.id")),
          Column("title", String(40)))
    Table("comments", md, _id(), Column("project_id", Integer, ForeignKey("projects.id")),
          Column("ticket_id", Integer, ForeignKey("tickets.id")), Column("body", String(80)))
    Table("activity", md, _id(), Column("subject_type", String(20)),
          Column("subject_id", String(36)), Column("what", String(40)))
    Table("audit_trail", md, _id(), Column("note", String(80)))
    ownership = Ownership.from_dict({
        "comments": {"parents": ["project_id -> projects.id", "ticket_id -> tickets.id"]},
        "activity": {"polymorphic": {"type": "subject_type", "id": "subject_id", "types": {
            "project": "projects", "ticket": "tickets", "comment": "comments"}}},
        "audit_trail": {"left_out": "rotated by the application itself"},
    })
    mapping = SchemaMapping(tenant_table="tenants", tenant_column="tenant_id",
                            ownership=ownership)
    rows: dict[str, list[dict]] = {
        "tenants": [{"id": 1, "name": "One", "code": "ONE"}, {"id": 2, "name": "Two",
                                                               "code": "TWO"}],
        "countries": [{"id": 1, "name": "FR"}],
        "audit_trail": [{"id": 1, "note": "x"}],
        "projects": [], "tickets": [], "comments": [], "activity": []}
    for t in (1, 2):
        for n in range(1, 3):
            i = t * 10 + n
            rows["projects"].append({"id": i, "tenant_id": t, "country_id": 1})
            rows["tickets"].append({"id": i, "tenant_id": t, "title": f"ticket {i}"})
            rows["comments"] += [
                {"id": i * 10, "project_id": i, "ticket_id": None, "body": "on project"},
                {"id": i * 10 + 1, "project_id": None, "ticket_id": i, "body": "on ticket"}]
            rows["activity"] += [
                {"id": i * 10, "subject_type": "project", "subject_id": str(i), "what": "made"},
                {"id": i * 10 + 1, "subject_type": "ticket", "subject_id": str(i),
                 "what": "opened"},
                {"id": i * 10 + 2, "subject_type": "comment", "subject_id": str(i * 10 + 1),
                 "what": "said"}]
    projects = "SELECT id FROM projects WHERE tenant_id = :t"
    tickets = "SELECT id FROM tickets WHERE tenant_id = :t"
    comments = (f"SELECT id FROM comments WHERE project_id IN ({projects}) OR ticket_id IN "
                f"({tickets})")
    truth = {
        "projects": projects, "tickets": tickets, "comments": comments,
        "activity": " UNION ".join(
            f"SELECT id FROM activity WHERE subject_type = '{kind}' AND subject_id IN "
            f"(SELECT TEXTID FROM ({sql}) AS owned_{kind})"
            for kind, sql in (("project", projects), ("ticket", tickets),
                              ("comment", comments))),
    }
    day = {"tickets": [{"id": 19, "tenant_id": 1, "title": "new"}],
           "comments": [{"id": 190, "project_id": None, "ticket_id": 19, "body": "new"}],
           "activity": [{"id": 190, "subject_type": "ticket", "subject_id": "19", "what": "new"},
                        {"id": 191, "subject_type": "comment", "subject_id": "190",
                         "what": "new"}]}
    return TenantSchema("tracker", md, mapping, rows, truth, ["countries"], ["audit_trail"],
                        day=day)


def ledger() -> TenantSchema:
    md = MetaData()
    _tenant_table(md, "shops")
    Table("accounts", md, _id(), Column("owner_shop", Integer), Column("name", String(40)))
    Table("ledgers", md, _id(), Column("account_id", Integer, ForeignKey("accounts.id"),
                                        nullable=False))
    Table("entries", md, _id(), Column("ledger_id", Integer, ForeignKey("ledgers.id"),
                                       nullable=False), Column("amount", Integer))
    Table("tags", md, _id(), Column("taggable_type", String(20)),
          Column("taggable_id", Integer), Column("tag", String(20)))
    ownership = Ownership.from_dict({
        "accounts": {"column": "owner_shop"},
        "tags": {"polymorphic": {"type": "taggable_type", "id": "taggable_id", "types": {
            "account": "accounts", "entry": "entries"}}},
    })
    mapping = SchemaMapping(tenant_table="shops", tenant_column="shop_id", ownership=ownership)
    rows: dict[str, list[dict]] = {
        "shops": [{"id": 1, "name": "S1", "code": "S1"}, {"id": 2, "name": "S2", "code": "S2"}],
        "accounts": [], "ledgers": [], "entries": [], "tags": []}
    for s in (1, 2):
        for n in range(1, 3):
            i = s * 10 + n
            rows["accounts"].append({"id": i, "owner_shop": s, "name": f"acc {i}"})
            rows["ledgers"].append({"id": i, "account_id": i})
            rows["entries"] += [{"id": i * 10 + k, "ledger_id": i, "amount": k} for k in (1, 2)]
            rows["tags"] += [{"id": i * 10, "taggable_type": "account", "taggable_id": i,
                              "tag": "vip"},
                             {"id": i * 10 + 1, "taggable_type": "entry",
                              "taggable_id": i * 10 + 1, "tag": "late"}]
    accounts = "SELECT id FROM accounts WHERE owner_shop = :t"
    ledgers = f"SELECT id FROM ledgers WHERE account_id IN ({accounts})"
    entries = f"SELECT id FROM entries WHERE ledger_id IN ({ledgers})"
    truth = {"accounts": accounts, "ledgers": ledgers, "entries": entries,
             "tags": f"SELECT id FROM tags WHERE (taggable_type = 'account' AND taggable_id IN "
                     f"({accounts})) OR (taggable_type = 'entry' AND taggable_id IN ({entries}))"}
    day = {"entries": [{"id": 199, "ledger_id": 11, "amount": 5}],
           "tags": [{"id": 199, "taggable_type": "entry", "taggable_id": 199, "tag": "new"}]}
    return TenantSchema("ledger", md, mapping, rows, truth, [], [], day=day)


SCHEMAS = {"invoicing": invoicing, "tracker": tracker, "ledger": ledger}


# --- a foreign schema through the real login ---------------------------------------------------
# ``crater``: the invoicing patterns plus what a login needs. Users are shared between three
# companies through ``user_company`` (alice is in all three) and keep a legacy company_id that
# says nothing true; admin rights come from ``assigned_roles -> roles.scope`` (no foreign key).
# As a support engineer writes it in settings.json: the mapping's keys and the ownership map.

ACME, BOLT, CORE = 1, 2, 3
LOGIN_PASSWORD = "crater-pass-1"
CRATER_MAPPING = {
    "tenant_table": "companies", "tenant_column": "company_id",
    "users_table": "users", "user_id_column": "id",
    "membership_table": "user_company", "membership_user_column": "user_id",
    "membership_tenant_column": "company_id",
    "role_assignments_table": "assigned_roles", "roles_table": "roles",
    "role_scope_column": "scope", "admin_roles": ["admin"], "super_admin_role": "super_admin",
}
CRATER_OWNERSHIP = {
    "users": "shared",
    "roles": {"column": "scope"},
    "addresses": {"column": "company_id", "parents": ["customer_id -> customers.id"]},
    "email_logs": {"polymorphic": {"type": "mailable_type", "id": "mailable_id", "types": {
        INVOICE: "invoices", ESTIMATE: "estimates", PAYMENT: "payments"}}},
    "app_settings": {"left_out": "the application's own settings, the same for every company"},
}
# name -> (id, legacy company_id, companies it is a member of, role ids it holds)
# alice is an admin of Acme and Bolt and only a clerk of Core.
PEOPLE = {"alice": (1, CORE, (ACME, BOLT, CORE), (1, 2, 3)),
          "bob": (2, BOLT, (ACME,), (1,)),                     # admin of Acme (legacy says Bolt)
          "carol": (3, None, (BOLT, CORE), (2, 4)),            # admin of Bolt and Core
          "dave": (4, ACME, (ACME,), (5,)),                    # 'admin' with no scope: of nothing
          "root": (5, None, (), (6,))}                         # the declared super admin
ROLES = [(1, "admin", ACME), (2, "admin", BOLT), (3, "clerk", CORE), (4, "admin", CORE),
         (5, "admin", None), (6, "super_admin", None)]


def crater() -> TenantSchema:
    """The invoicing schema with logins: see the comment above for who may do what."""
    md = MetaData()
    Table("companies", md, _id(), Column("name", String(50)), Column("code", String(20)))
    fk = lambda col, target, nullable=True: Column(  # noqa: E731
        col, Integer, ForeignKey(target), nullable=nullable)
    Table("users", md, _id(), Column("username", String(50), nullable=False),
          Column("email", String(100)), Column("password", String(255), nullable=False),
          Column("full_name", String(100)), fk("company_id", "companies.id"))
    Table("user_company", md, _id(), fk("user_id", "users.id", False),
          fk("company_id", "companies.id", False))
    # The scope is the company's id kept as text, with no foreign key.
    Table("roles", md, _id(), Column("name", String(30), nullable=False),
          Column("scope", String(20)))
    Table("assigned_roles", md, _id(), fk("role_id", "roles.id", False),
          fk("user_id", "users.id", False))
    Table("currencies", md, _id(), Column("code", String(3)))
    Table("customers", md, _id(), fk("company_id", "companies.id", False),
          fk("currency_id", "currencies.id"), Column("name", String(50)))
    Table("addresses", md, _id(), fk("company_id", "companies.id"),
          fk("customer_id", "customers.id"), Column("line", String(80)))
    Table("invoices", md, _id(), fk("company_id", "companies.id", False),
          fk("customer_id", "customers.id"), Column("total", Integer))
    Table("estimates", md, _id(), fk("company_id", "companies.id", False),
          fk("customer_id", "customers.id"))
    Table("payments", md, _id(), fk("company_id", "companies.id", False),
          fk("invoice_id", "invoices.id"), Column("amount", Integer))
    Table("email_logs", md, _id(), Column("mailable_type", String(60)),
          Column("mailable_id", Integer), Column("subject", String(80)))
    Table("app_settings", md, _id(), Column("key", String(40)), Column("value", String(80)))
    mapping = replace(SchemaMapping.from_dict(CRATER_MAPPING),
                      ownership=Ownership.from_dict(CRATER_OWNERSHIP))
    hashed = php_bcrypt(LOGIN_PASSWORD)
    rows: dict[str, list[dict]] = {
        "companies": [{"id": ACME, "name": "Acme", "code": "ACME"},
                      {"id": BOLT, "name": "Bolt", "code": "BOLT"},
                      {"id": CORE, "name": "Core", "code": "CORE"}],
        "users": [{"id": uid, "username": name, "email": f"{name}@example.test",
                   "password": hashed, "full_name": name.title(), "company_id": legacy}
                  for name, (uid, legacy, _, _) in PEOPLE.items()],
        "user_company": [{"user_id": uid, "company_id": c}
                         for uid, _, member_of, _ in PEOPLE.values() for c in member_of],
        "roles": [{"id": i, "name": name, "scope": None if scope is None else str(scope)}
                  for i, name, scope in ROLES],
        "assigned_roles": [{"user_id": uid, "role_id": r}
                           for uid, _, _, held in PEOPLE.values() for r in held],
        "currencies": [{"id": 1, "code": "EUR"}, {"id": 2, "code": "USD"}],
        "app_settings": [{"id": 1, "key": "theme", "value": "dark"}],
        "customers": [], "addresses": [], "invoices": [], "estimates": [], "payments": [],
        "email_logs": [],
    }
    for table in ("user_company", "assigned_roles"):
        for n, row in enumerate(rows[table], start=1):
            row["id"] = n
    for c in (ACME, BOLT, CORE):
        base = c * 100
        rows["addresses"].append({"id": base, "company_id": c, "customer_id": None,
                                  "line": f"HQ of {c}"})
        for n in range(1, 4):
            cid = base + n
            rows["customers"].append({"id": cid, "company_id": c, "currency_id": 1 + n % 2,
                                      "name": f"cust{cid}"})
            rows["addresses"].append({"id": cid, "company_id": None, "customer_id": cid,
                                      "line": f"street {cid}"})
            rows["invoices"].append({"id": cid, "company_id": c, "customer_id": cid,
                                     "total": n * 10})
            rows["estimates"].append({"id": cid, "company_id": c, "customer_id": cid})
            rows["payments"].append({"id": cid, "company_id": c, "invoice_id": cid,
                                     "amount": n})
            for k, kind in enumerate((INVOICE, ESTIMATE, PAYMENT)):
                rows["email_logs"].append({"id": cid * 10 + k, "mailable_type": kind,
                                           "mailable_id": cid, "subject": f"mail {cid}"})
    owned_by = "company_id = :t"
    truth = {
        "user_company": f"SELECT id FROM user_company WHERE {owned_by}",
        "roles": "SELECT id FROM roles WHERE scope = :t_text",
        "assigned_roles": "SELECT id FROM assigned_roles WHERE role_id IN "
                          "(SELECT id FROM roles WHERE scope = :t_text)",
        "customers": f"SELECT id FROM customers WHERE {owned_by}",
        "addresses": f"SELECT id FROM addresses WHERE {owned_by} OR customer_id IN "
                     f"(SELECT id FROM customers WHERE {owned_by})",
        "invoices": f"SELECT id FROM invoices WHERE {owned_by}",
        "estimates": f"SELECT id FROM estimates WHERE {owned_by}",
        "payments": f"SELECT id FROM payments WHERE {owned_by}",
        "email_logs": " UNION ".join(
            f"SELECT id FROM email_logs WHERE mailable_type = '{kind}'"
            f" AND mailable_id IN (SELECT id FROM {table} WHERE {owned_by})"
            for kind, table in ((INVOICE, "invoices"), (ESTIMATE, "estimates"),
                                (PAYMENT, "payments"))),
    }
    day = {"customers": [{"id": 150, "company_id": ACME, "currency_id": 1, "name": "new"}],
           "addresses": [{"id": 150, "company_id": None, "customer_id": 150, "line": "new 1"},
                         {"id": 151, "company_id": None, "customer_id": 150, "line": "new 2"}],
           "invoices": [{"id": 150, "company_id": ACME, "customer_id": 150, "total": 99}],
           "email_logs": [{"id": 1500, "mailable_type": INVOICE, "mailable_id": 150,
                           "subject": "new invoice"},
                          {"id": 1501, "mailable_type": INVOICE, "mailable_id": 150,
                           "subject": "reminder"}]}
    return TenantSchema("crater", md, mapping, rows, truth, ["users", "currencies"],
                        ["app_settings"], tenants=(ACME, BOLT), day=day)
