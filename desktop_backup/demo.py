"""The demo billing database: the real one's shape, deterministic data, three organizations.

The schema mirrors the Laravel billing database as it exists in shops: business tables with a
nullable ``organization_id`` mostly *without* a foreign key to ``organizations``; tables that
belong to an organization only through a parent (``user_permissions``, ``email_otps`` and the
return/transfer line items); a ``companies`` table that means drug manufacturers; and shared
reference tables (``states``, ``hsn_codes``, ``subscription_plans``) that no organization owns.
Data comes from a seeded random generator so every run produces the same rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import bcrypt
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import Engine

from desktop_backup.errors import DatabaseUnavailable

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed to the user on purpose: demo logins only
SUPER_ADMIN = "superadmin"
EPOCH = datetime(2026, 1, 5, 9, 30, 0)

ROLES = ("super_admin", "admin", "manager", "staff", "readonly", "user")
ORG_STATUSES = ("active", "inactive", "suspended")


def _id() -> Column:
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                  autoincrement=True)


def _fk_id(name: str, target: str | None = None, ondelete: str | None = None,
           nullable: bool = True) -> Column:
    kind = BigInteger().with_variant(Integer, "sqlite")
    if target:
        return Column(name, kind, ForeignKey(target, ondelete=ondelete), nullable=nullable)
    return Column(name, kind, nullable=nullable)


def _org() -> Column:
    # Laravel's business tables: nullable organization_id, no foreign key, an index.
    return Column("organization_id", BigInteger().with_variant(Integer, "sqlite"), nullable=True,
                  index=True)


def _timestamps() -> list[Column]:
    return [Column("created_at", DateTime, nullable=True), Column("updated_at", DateTime,
                                                                  nullable=True)]


def _money(name: str, precision: int = 12) -> Column:
    return Column(name, Numeric(precision, 2), nullable=False, default=Decimal("0.00"))


def build_schema() -> MetaData:
    """The billing database's tables as SQLAlchemy Core objects."""
    md = MetaData()
    Table("migrations", md, _id(), Column("migration", String(255), nullable=False),
          Column("batch", Integer, nullable=False))
    Table("subscription_plans", md, _id(), Column("name", String(100), nullable=False),
          _money("price"), Column("duration_days", Integer, nullable=False), *_timestamps())
    Table("organizations", md, _id(), Column("name", String(255), nullable=False),
          Column("code", String(50), unique=True, nullable=True),
          Column("status", Enum(*ORG_STATUSES, name="organization_status"), nullable=False,
                 default="active"),
          Column("timezone", String(64), nullable=False, default="Asia/Kolkata"),
          _fk_id("subscription_plan_id", "subscription_plans.id"),
          Column("auto_backup_enabled", Boolean, nullable=False, default=True),
          Column("auto_backup_tables", JSON, nullable=True), *_timestamps())
    Table("states", md, _id(), Column("name", String(100), nullable=False),
          Column("code", String(10), nullable=False))
    Table("hsn_codes", md, _id(), Column("code", String(20), nullable=False, unique=True),
          Column("description", String(255)), Column("gst_rate", Numeric(5, 2), nullable=False))
    Table("users", md,
          Column("user_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                 autoincrement=True),
          _fk_id("organization_id", "organizations.id", ondelete="cascade"),
          Column("is_organization_owner", Boolean, nullable=False, default=False),
          Column("full_name", String(255), nullable=False),
          Column("username", String(100), nullable=False, unique=True),
          Column("email", String(255), nullable=False, unique=True),
          Column("password", String(255), nullable=False),
          Column("role", Enum(*ROLES, name="user_role"), nullable=False, default="user"),
          Column("is_active", Boolean, nullable=False, default=True),
          Column("remember_token", String(100), nullable=True), *_timestamps())
    Table("user_permissions", md, _id(),
          _fk_id("user_id", "users.user_id", ondelete="cascade", nullable=False),
          Column("permission", String(100), nullable=False), *_timestamps())
    Table("email_otps", md, _id(),
          _fk_id("user_id", "users.user_id", ondelete="cascade", nullable=False),
          Column("otp", String(10), nullable=False), Column("expires_at", DateTime),
          Column("used", Boolean, nullable=False, default=False), *_timestamps())
    Table("companies", md, _id(),
          _fk_id("organization_id", "organizations.id", ondelete="cascade"),
          Column("name", String(255), nullable=False), Column("short_name", String(50)),
          *_timestamps())
    Table("customers", md, _id(), _org(), Column("name", String(255), nullable=False),
          Column("phone", String(20)), Column("email", String(255)), Column("address", Text),
          _fk_id("state_id", "states.id"), Column("gstin", String(20)),
          _money("opening_balance", 14), *_timestamps())
    Table("suppliers", md, _id(), _org(), Column("name", String(255), nullable=False),
          Column("phone", String(20)), _fk_id("state_id", "states.id"),
          Column("gstin", String(20)), *_timestamps())
    Table("sales_men", md, _id(), _org(), Column("name", String(255), nullable=False),
          Column("phone", String(20)), Column("commission_rate", Numeric(5, 2)), *_timestamps())
    Table("items", md, _id(), _org(), _fk_id("company_id", "companies.id"),
          _fk_id("hsn_code_id", "hsn_codes.id"), Column("name", String(255), nullable=False),
          Column("pack", String(50)), _money("mrp"), _money("sale_rate"), _money("purchase_rate"),
          Column("gst_rate", Numeric(5, 2), nullable=False), *_timestamps())
    Table("batches", md, _id(), _org(), _fk_id("item_id", "items.id", nullable=False),
          Column("batch_no", String(50), nullable=False), Column("expiry_date", Date),
          _money("mrp"), Column("quantity", Integer, nullable=False, default=0), *_timestamps())
    Table("sale_transactions", md, _id(), _org(), _fk_id("customer_id", "customers.id"),
          _fk_id("sales_man_id", "sales_men.id"),
          Column("invoice_no", String(50), nullable=False), Column("invoice_date", Date),
          _money("total_amount", 14), Column("status", String(20), nullable=False),
          Column("notes", Text), *_timestamps())
    Table("sale_transaction_items", md, _id(), _org(),
          _fk_id("sale_transaction_id", "sale_transactions.id", ondelete="cascade",
                 nullable=False),
          _fk_id("item_id", "items.id"), _fk_id("batch_id", "batches.id"),
          Column("quantity", Integer, nullable=False), _money("rate"), _money("amount", 14),
          *_timestamps())
    Table("purchase_transactions", md, _id(), _org(), _fk_id("supplier_id", "suppliers.id"),
          Column("bill_no", String(50), nullable=False), Column("bill_date", Date),
          _money("total_amount", 14), *_timestamps())
    Table("purchase_transaction_items", md, _id(), _org(),
          _fk_id("purchase_transaction_id", "purchase_transactions.id", ondelete="cascade",
                 nullable=False),
          _fk_id("item_id", "items.id"), _fk_id("batch_id", "batches.id"),
          Column("quantity", Integer, nullable=False), _money("rate"), _money("amount", 14),
          *_timestamps())
    Table("sale_return_transactions", md, _id(), _org(),
          _fk_id("sale_transaction_id", "sale_transactions.id"),
          _fk_id("customer_id", "customers.id"), Column("return_no", String(50), nullable=False),
          Column("return_date", Date), _money("total_amount", 14), *_timestamps())
    Table("sale_return_transaction_items", md, _id(),
          _fk_id("sale_return_transaction_id", "sale_return_transactions.id", ondelete="cascade",
                 nullable=False),
          _fk_id("item_id", "items.id"), Column("quantity", Integer, nullable=False),
          _money("rate"), _money("amount", 14), *_timestamps())
    Table("purchase_return_transactions", md, _id(), _org(),
          _fk_id("purchase_transaction_id", "purchase_transactions.id"),
          _fk_id("supplier_id", "suppliers.id"), Column("return_no", String(50), nullable=False),
          Column("return_date", Date), _money("total_amount", 14), *_timestamps())
    Table("purchase_return_transaction_items", md, _id(),
          _fk_id("purchase_return_transaction_id", "purchase_return_transactions.id",
                 ondelete="cascade", nullable=False),
          _fk_id("item_id", "items.id"), Column("quantity", Integer, nullable=False),
          _money("rate"), _money("amount", 14), *_timestamps())
    Table("customer_ledgers", md, _id(), _org(), _fk_id("customer_id", "customers.id"),
          Column("transaction_date", Date), Column("particulars", String(255)),
          _money("debit", 14), _money("credit", 14), _money("balance", 14),
          Column("reference_type", String(50)), Column("reference_id", BigInteger),
          *_timestamps())
    Table("stock_ledgers", md, _id(), _org(), _fk_id("item_id", "items.id"),
          _fk_id("batch_id", "batches.id"), Column("transaction_date", Date),
          Column("type", String(30), nullable=False),
          Column("quantity_in", Integer, nullable=False, default=0),
          Column("quantity_out", Integer, nullable=False, default=0),
          Column("reference_type", String(50)), Column("reference_id", BigInteger),
          *_timestamps())
    Table("stock_transfer_outgoing_transactions", md, _id(), _org(),
          Column("transfer_no", String(50), nullable=False), Column("transfer_date", Date),
          Column("to_branch", String(255)), _money("total_amount", 14), *_timestamps())
    Table("stock_transfer_outgoing_transaction_items", md, _id(),
          _fk_id("stock_transfer_outgoing_transaction_id",
                 "stock_transfer_outgoing_transactions.id", ondelete="cascade", nullable=False),
          _fk_id("item_id", "items.id"), _fk_id("batch_id", "batches.id"),
          Column("quantity", Integer, nullable=False), _money("rate"), _money("amount", 14),
          *_timestamps())
    return md


@dataclass(frozen=True)
class DemoOrganization:
    """One demo shop: its identity and how much business it has (its size)."""

    code: str
    name: str
    status: str
    timezone: str
    scale: float


DEMO_ORGANIZATIONS = (
    DemoOrganization("MEDP", "Medplus Pharmacy, Pune", "active", "Asia/Kolkata", 1.0),
    DemoOrganization("CITY", "City Care Chemists", "active", "Asia/Kolkata", 0.1),
    DemoOrganization("GRNL", "Greenleaf Medicals", "suspended", "Asia/Kolkata", 0.01),
)

STATES = [("Maharashtra", "MH"), ("Karnataka", "KA"), ("Gujarat", "GJ"), ("Tamil Nadu", "TN"),
          ("Delhi", "DL"), ("West Bengal", "WB")]
HSN = [("3004", "Medicaments in measured doses", "12.00"),
       ("3003", "Medicaments not in measured doses", "12.00"),
       ("3005", "Wadding, gauze, bandages", "12.00"),
       ("9018", "Medical instruments", "18.00"),
       ("2106", "Food preparations", "18.00"),
       ("3306", "Oral hygiene preparations", "18.00")]
PLANS = [("Starter", "999.00", 30), ("Business", "9999.00", 365), ("Enterprise", "24999.00", 365)]
MANUFACTURERS = ["Cipla", "Sun Pharma", "Dr. Reddy's", "Lupin", "Mankind", "Zydus Cadila",
                 "Alkem", "Torrent", "Glenmark", "Abbott India"]
DRUGS = ["Paracetamol 500mg", "Amoxicillin 250mg", "Cetirizine 10mg", "Metformin 500mg",
         "Azithromycin 500mg", "Pantoprazole 40mg", "Atorvastatin 10mg", "Dolo 650",
         "Vitamin D3 60K", "ORS Sachet", "Crocin Advance", "Betadine 5%"]
FIRST = ["Aarav", "Priya", "Rahul", "Sneha", "Vikram", "Ananya", "Rohan", "Kavya", "Arjun",
         "Meera", "Zoë", "Śrīnivās", "José", "Łukasz"]
LAST = ["Sharma", "Patel", "Iyer", "Reddy", "Gupta", "Nair", "Kulkarni", "Das", "Müller"]
PERMISSIONS = ["sales.create", "sales.view", "purchases.create", "reports.view", "stock.adjust",
               "customers.manage"]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    organization: str | None
    note: str = ""


def demo_logins() -> list[DemoLogin]:
    """The logins the demo database has, as printed by `desktop-backup demo`."""
    logins = [DemoLogin(SUPER_ADMIN, "super_admin", None, "manages every organization")]
    for org in DEMO_ORGANIZATIONS:
        low = org.code.lower()
        suspended = " (organization suspended)" if org.status == "suspended" else ""
        logins += [
            DemoLogin(f"{low}.owner", "manager", org.code, "organization owner" + suspended),
            DemoLogin(f"{low}.admin", "admin", org.code, suspended.strip(" ()")),
            DemoLogin(f"{low}.manager", "manager", org.code, "refused: not an admin"),
            DemoLogin(f"{low}.staff", "staff", org.code, "refused: staff"),
        ]
    logins.append(DemoLogin("medp.former", "admin", "MEDP", "refused: inactive user"))
    return logins


@lru_cache(maxsize=1)
def _demo_hash() -> str:
    # PHP's password_hash(PASSWORD_BCRYPT, cost 12) writes $2y$; bcrypt writes $2b$, same bytes.
    hashed = bcrypt.hashpw(DEMO_PASSWORD.encode(), bcrypt.gensalt(rounds=12)).decode()
    return "$2y$" + hashed[4:]


class _Generator:
    """Deterministic row generation: one seeded RNG, ids assigned in order per table."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.rows: dict[str, list[dict]] = {}
        self.next_id: dict[str, int] = {}

    def add(self, table: str, row: dict, pk: str = "id") -> int:
        new_id = self.next_id.get(table, 1)
        self.next_id[table] = new_id + 1
        self.rows.setdefault(table, []).append({pk: new_id, **row})
        return new_id

    def money(self, low: float, high: float) -> Decimal:
        return Decimal(self.rng.randint(int(low * 100), int(high * 100))) / 100

    def person(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def when(self, day: int) -> datetime:
        return EPOCH + timedelta(days=day, minutes=self.rng.randint(0, 600))


def generate_rows(scale: float = 1.0, seed: int = 2026) -> dict[str, list[dict]]:
    """All demo rows, keyed by table, in insert order. `scale` shrinks every organization."""
    g = _Generator(seed)
    for name, code in STATES:
        g.add("states", {"name": name, "code": code})
    for code, desc, rate in HSN:
        g.add("hsn_codes", {"code": code, "description": desc, "gst_rate": Decimal(rate)})
    for name, price, days in PLANS:
        g.add("subscription_plans", {"name": name, "price": Decimal(price), "duration_days": days,
                                     "created_at": EPOCH, "updated_at": EPOCH})
    g.add("migrations", {"migration": "2026_01_12_170000_create_auto_backup_logs_table",
                         "batch": 1})
    pw = _demo_hash()
    g.add("users", {"organization_id": None, "is_organization_owner": False,
                    "full_name": "Support Super Admin", "username": SUPER_ADMIN,
                    "email": "superadmin@billing.example", "password": pw, "role": "super_admin",
                    "is_active": True, "remember_token": None, "created_at": EPOCH,
                    "updated_at": EPOCH}, pk="user_id")
    for index, org in enumerate(DEMO_ORGANIZATIONS):
        org_id = g.add("organizations", {
            "name": org.name, "code": org.code, "status": org.status, "timezone": org.timezone,
            "subscription_plan_id": 1 + index % len(PLANS), "auto_backup_enabled": True,
            "auto_backup_tables": None, "created_at": EPOCH, "updated_at": EPOCH})
        _generate_organization(g, org, org_id, pw, scale * org.scale)
    return g.rows


def _generate_organization(g: _Generator, org: DemoOrganization, org_id: int, pw: str,
                           scale: float) -> None:
    low = org.code.lower()
    stamp = {"created_at": EPOCH, "updated_at": EPOCH}

    def n(count: int) -> int:
        return max(2, int(count * scale))

    users = [("owner", "manager", True, True), ("admin", "admin", False, True),
             ("manager", "manager", False, True), ("staff", "staff", False, True)]
    if org.code == "MEDP":
        users.append(("former", "admin", False, False))
    for suffix, role, owner, active in users:
        user_id = g.add("users", {
            "organization_id": org_id, "is_organization_owner": owner,
            "full_name": g.person(), "username": f"{low}.{suffix}",
            "email": f"{suffix}@{low}.example", "password": pw, "role": role,
            "is_active": active, "remember_token": None, **stamp}, pk="user_id")
        for perm in g.rng.sample(PERMISSIONS, 3):
            g.add("user_permissions", {"user_id": user_id, "permission": perm, **stamp})
        g.add("email_otps", {"user_id": user_id, "otp": f"{g.rng.randint(0, 999999):06d}",
                             "expires_at": EPOCH + timedelta(minutes=10), "used": True, **stamp})
    companies = [g.add("companies", {"organization_id": org_id, "name": name,
                                     "short_name": name[:4].upper(), **stamp})
                 for name in MANUFACTURERS]
    customers = [g.add("customers", {
        "organization_id": org_id, "name": f"{g.person()} ({i})",
        "phone": f"98{g.rng.randint(10000000, 99999999)}", "email": None,
        "address": f"{g.rng.randint(1, 400)}, M.G. Road/Lane {i}",
        "state_id": g.rng.randint(1, len(STATES)), "gstin": None,
        "opening_balance": g.money(0, 5000), **stamp}) for i in range(n(1500))]
    suppliers = [g.add("suppliers", {
        "organization_id": org_id, "name": f"{g.rng.choice(MANUFACTURERS)} Distributors {i}",
        "phone": f"22{g.rng.randint(10000000, 99999999)}",
        "state_id": g.rng.randint(1, len(STATES)), "gstin": f"27AAACD{i:04d}Z1", **stamp})
        for i in range(n(100))]
    sales_men = [g.add("sales_men", {"organization_id": org_id, "name": g.person(),
                                     "phone": None, "commission_rate": g.money(0, 5), **stamp})
                 for _ in range(n(12))]
    items, batches = [], []
    for i in range(n(2000)):
        mrp = g.money(10, 900)
        item_id = g.add("items", {
            "organization_id": org_id, "company_id": g.rng.choice(companies),
            "hsn_code_id": g.rng.randint(1, len(HSN)),
            "name": f"{g.rng.choice(DRUGS)} #{i}", "pack": f"{g.rng.choice([10, 15, 30])} tabs",
            "mrp": mrp, "sale_rate": (mrp * Decimal("0.9")).quantize(Decimal("0.01")),
            "purchase_rate": (mrp * Decimal("0.7")).quantize(Decimal("0.01")),
            "gst_rate": Decimal("12.00"), **stamp})
        items.append((item_id, mrp))
        for b in range(2):
            batches.append((g.add("batches", {
                "organization_id": org_id, "item_id": item_id, "batch_no": f"B{i:05d}{b}",
                "expiry_date": date(2027, 1, 1) + timedelta(days=g.rng.randint(0, 700)),
                "mrp": mrp, "quantity": g.rng.randint(0, 500), **stamp}), item_id, mrp))
    sales = []
    for i in range(n(7000)):
        when = g.when(i * 300 // max(1, n(7000)))
        customer = g.rng.choice(customers)
        sale_id = g.add("sale_transactions", {
            "organization_id": org_id, "customer_id": customer,
            "sales_man_id": g.rng.choice(sales_men), "invoice_no": f"{org.code}/S/{i + 1:06d}",
            "invoice_date": when.date(), "total_amount": Decimal("0.00"), "status": "paid",
            "notes": "Deliver to ground floor 🚚" if i % 97 == 0 else None,
            "created_at": when, "updated_at": when})
        total = Decimal("0.00")
        for _ in range(g.rng.randint(1, 4)):
            batch_id, item_id, mrp = g.rng.choice(batches)
            qty = g.rng.randint(1, 10)
            amount = mrp * qty
            total += amount
            g.add("sale_transaction_items", {
                "organization_id": org_id, "sale_transaction_id": sale_id, "item_id": item_id,
                "batch_id": batch_id, "quantity": qty, "rate": mrp, "amount": amount,
                "created_at": when, "updated_at": when})
            g.add("stock_ledgers", {
                "organization_id": org_id, "item_id": item_id, "batch_id": batch_id,
                "transaction_date": when.date(), "type": "sale", "quantity_in": 0,
                "quantity_out": qty, "reference_type": "sale", "reference_id": sale_id,
                "created_at": when, "updated_at": when})
        g.rows["sale_transactions"][-1]["total_amount"] = total
        g.add("customer_ledgers", {
            "organization_id": org_id, "customer_id": customer, "transaction_date": when.date(),
            "particulars": f"Invoice {org.code}/S/{i + 1:06d}", "debit": total,
            "credit": Decimal("0.00"), "balance": total, "reference_type": "sale",
            "reference_id": sale_id, "created_at": when, "updated_at": when})
        sales.append((sale_id, customer, when))
    purchases = []
    for i in range(n(1200)):
        when = g.when(i * 300 // max(1, n(1200)))
        supplier = g.rng.choice(suppliers)
        purchase_id = g.add("purchase_transactions", {
            "organization_id": org_id, "supplier_id": supplier,
            "bill_no": f"PB-{i + 1:05d}", "bill_date": when.date(),
            "total_amount": Decimal("0.00"), "created_at": when, "updated_at": when})
        total = Decimal("0.00")
        for _ in range(g.rng.randint(2, 5)):
            batch_id, item_id, mrp = g.rng.choice(batches)
            qty = g.rng.randint(10, 100)
            rate = (mrp * Decimal("0.7")).quantize(Decimal("0.01"))
            total += rate * qty
            g.add("purchase_transaction_items", {
                "organization_id": org_id, "purchase_transaction_id": purchase_id,
                "item_id": item_id, "batch_id": batch_id, "quantity": qty, "rate": rate,
                "amount": rate * qty, "created_at": when, "updated_at": when})
        g.rows["purchase_transactions"][-1]["total_amount"] = total
        purchases.append((purchase_id, supplier, when))
    for i, (sale_id, customer, when) in enumerate(g.rng.sample(sales, n(250))):
        ret_id = g.add("sale_return_transactions", {
            "organization_id": org_id, "sale_transaction_id": sale_id, "customer_id": customer,
            "return_no": f"SR-{i + 1:05d}", "return_date": when.date(),
            "total_amount": Decimal("0.00"), "created_at": when, "updated_at": when})
        _return_lines(g, "sale_return_transaction_items", "sale_return_transaction_id", ret_id,
                      items, when)
    for i, (purchase_id, supplier, when) in enumerate(g.rng.sample(purchases, n(80))):
        ret_id = g.add("purchase_return_transactions", {
            "organization_id": org_id, "purchase_transaction_id": purchase_id,
            "supplier_id": supplier, "return_no": f"PR-{i + 1:05d}",
            "return_date": when.date(), "total_amount": Decimal("0.00"),
            "created_at": when, "updated_at": when})
        _return_lines(g, "purchase_return_transaction_items", "purchase_return_transaction_id",
                      ret_id, items, when)
    for i in range(n(60)):
        when = g.when(i * 5)
        transfer_id = g.add("stock_transfer_outgoing_transactions", {
            "organization_id": org_id, "transfer_no": f"ST-{i + 1:04d}",
            "transfer_date": when.date(), "to_branch": f"{org.name} – Branch {1 + i % 3}",
            "total_amount": Decimal("0.00"), "created_at": when, "updated_at": when})
        for _ in range(3):
            batch_id, item_id, mrp = g.rng.choice(batches)
            qty = g.rng.randint(1, 20)
            g.add("stock_transfer_outgoing_transaction_items", {
                "stock_transfer_outgoing_transaction_id": transfer_id, "item_id": item_id,
                "batch_id": batch_id, "quantity": qty, "rate": mrp, "amount": mrp * qty,
                "created_at": when, "updated_at": when})


def _return_lines(g: _Generator, table: str, parent_column: str, parent_id: int,
                  items: list[tuple[int, Decimal]], when: datetime) -> None:
    for _ in range(g.rng.randint(1, 2)):
        item_id, mrp = g.rng.choice(items)
        qty = g.rng.randint(1, 3)
        g.add(table, {parent_column: parent_id, "item_id": item_id, "quantity": qty,
                      "rate": mrp, "amount": mrp * qty, "created_at": when, "updated_at": when})


def load_demo(engine: Engine, scale: float = 1.0, batch: int = 5000) -> dict[str, int]:
    """Create the demo schema and rows in an empty database; returns rows per table.

    Used for the SQLite demo file and, in tests, to load the same data into MariaDB and
    PostgreSQL through SQLAlchemy. Ids are inserted explicitly, so PostgreSQL's sequences are
    moved past them afterwards.
    """
    metadata = build_schema()
    rows = generate_rows(scale)
    with engine.begin() as conn:
        metadata.create_all(conn)
        for table in metadata.sorted_tables:
            table_rows = rows.get(table.name, [])
            for start in range(0, len(table_rows), batch):
                conn.execute(insert(table), table_rows[start:start + batch])
        if conn.dialect.name == "postgresql":
            for table in metadata.sorted_tables:
                pk = next(iter(table.primary_key.columns))
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk.name}'), "
                    f"COALESCE((SELECT MAX({pk.name}) FROM {table.name}), 0) + 1, false)")
    return {name: len(table_rows) for name, table_rows in rows.items()}


@dataclass(frozen=True)
class DemoResult:
    path: Path
    url: str
    created: bool
    rows: int


def create_demo_database(path: Path) -> DemoResult:
    """Create the demo SQLite file, or leave an existing demo database exactly as it is.

    Running twice must neither duplicate nor damage anything, and the shop owner may have
    made backups or restores against it since: an existing demo file is kept. A file that is
    something else is refused rather than overwritten.
    """
    path = Path(path).resolve()
    url = f"sqlite:///{path}"
    if path.exists():
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                if "organizations" not in inspect(conn).get_table_names():
                    raise DatabaseUnavailable(
                        f"{path} exists and is not a demo billing database; choose another path.")
                codes = set(conn.scalars(select(build_schema().tables["organizations"].c.code)))
                rows = conn.scalar(select(func.count()).select_from(
                    build_schema().tables["sale_transactions"]))
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            raise DatabaseUnavailable(
                f"{path} exists but cannot be read as a demo database ({exc.__class__.__name__})"
                "; move it away or choose another path.") from exc
        finally:
            engine.dispose()
        if not {o.code for o in DEMO_ORGANIZATIONS} <= codes:
            raise DatabaseUnavailable(
                f"{path} exists and is not the demo billing database; choose another path.")
        return DemoResult(path, url, created=False, rows=rows or 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{tmp}")
    try:
        counts = load_demo(engine)
    finally:
        engine.dispose()
    tmp.replace(path)
    return DemoResult(path, url, created=True, rows=sum(counts.values()))
