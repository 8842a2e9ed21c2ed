"""The wide bench shape: the demo's 21 tables plus 96 wide business tables, as a real billing
database grown over years looks (issue 21).

    from wide_schema import build_schema, plan_rows, table_rows

Every extra table carries ``organization_id`` (Laravel's way: nullable, indexed, no foreign
key) and has 20-60 columns (two have 118): many nullable varchar and text columns, decimal(15,2)
amounts, dates and datetimes, integers, booleans and JSON-ish text. A quarter of them are the
child of the table before them through a foreign key with ON DELETE CASCADE. ``--scale 1`` puts
about 1.2 million rows in organization 1 (MEDP): 30,000 in the demo's tables at demo scale 0.5
and the rest spread unevenly over the wide tables (a few big ledgers, many small masters);
organizations 2 and 3 get a tenth and a hundredth of that.

The rows are made as tuples from small per-column pools of values, table by table, so a
million rows never sit in memory at once and the generation stays a fraction of the load.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

EXTRA_TABLES = 96
DEMO_SCALE = 0.5  # the demo's own tables: ~31,000 rows of MEDP at --scale 1
TOTAL_ROWS = 1_200_000  # organization 1 at --scale 1
ORG_SHARES = {1: 1.0, 2: 0.1, 3: 0.01}  # the demo's organization ids: MEDP, CITY, GRNL
POOL = 997  # distinct values per column (a prime, so columns do not repeat in step)
KINDS = ("varchar", "varchar", "varchar", "text", "decimal", "decimal", "date", "datetime",
         "int", "int", "bool", "json")
WIDEST = {7: 118, 41: 118}  # two tables as wide as the real one's widest


def _id_type():
    return BigInteger().with_variant(Integer, "sqlite")


@dataclass(frozen=True)
class WideTable:
    """One extra table: its name, its column kinds and its parent (for the cascade FK)."""

    index: int
    name: str
    kinds: tuple[str, ...]
    parent: str | None
    weight: float


def wide_tables() -> list[WideTable]:
    rng = random.Random(21)
    tables = []
    for i in range(EXTRA_TABLES):
        width = WIDEST.get(i, int(rng.triangular(20, 61, 24)))
        kinds = tuple(rng.choice(KINDS) for _ in range(width - 4))  # id, org, parent, created
        parent = tables[-1].name if i % 4 == 3 else None
        weight = (8.0 if i % 16 == 0 else 2.0 if i % 5 == 0 else 0.5) * rng.uniform(0.7, 1.3)
        tables.append(WideTable(i, f"wide_{i:03d}_{_NOUNS[i % len(_NOUNS)]}", kinds, parent,
                                weight))
    return tables


_NOUNS = ("ledger_entries", "vouchers", "bank_entries", "gst_returns", "price_lists",
          "schemes", "credit_notes", "debit_notes", "delivery_challans", "quotations",
          "orders", "receipts", "payments", "expenses", "journals", "attachments")


def _column(name: str, kind: str) -> Column:
    types = {"varchar": String(255), "text": Text, "decimal": Numeric(15, 2), "date": Date,
             "datetime": DateTime, "int": Integer, "bool": Boolean, "json": Text}
    nullable = kind != "bool"
    return Column(name, types[kind], nullable=nullable)


def build_schema() -> MetaData:
    """The demo's tables and the wide ones, as SQLAlchemy Core objects."""
    from desktop_backup.demo import build_schema as demo_schema

    md = demo_schema()
    for t in wide_tables():
        cols = [Column("id", _id_type(), primary_key=True, autoincrement=True),
                Column("organization_id", _id_type(), nullable=True, index=True)]
        if t.parent:
            cols.append(Column("parent_id", _id_type(),
                               ForeignKey(f"{t.parent}.id", ondelete="CASCADE"), nullable=False))
        else:
            cols.append(Column("reference_no", String(50), nullable=True))
        cols += [_column(f"c{j:03d}_{kind}", kind) for j, kind in enumerate(t.kinds)]
        cols.append(Column("created_at", DateTime, nullable=True))
        Table(t.name, md, *cols)
    return md


def plan_rows(scale: float) -> dict[str, dict[int, int]]:
    """Rows per wide table per organization id."""
    tables = wide_tables()
    total_weight = sum(t.weight for t in tables)
    wide_total = (TOTAL_ROWS - 63_000 * DEMO_SCALE) * scale
    plan = {}
    for t in tables:
        base = max(1, int(wide_total * t.weight / total_weight))
        plan[t.name] = {org: max(1, int(base * share)) for org, share in ORG_SHARES.items()}
    return plan


def _pool(kind: str, rng: random.Random) -> list:
    epoch = datetime(2019, 4, 1, 9, 0, 0)
    nulls = kind in ("varchar", "text", "json", "date", "datetime") and rng.random() < 0.6
    values: list = []
    for k in range(POOL):
        if nulls and k % 3 == 0:
            values.append(None)
        elif kind == "varchar":
            values.append(f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {k}")
        elif kind == "text":
            values.append(" ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 30))))
        elif kind == "decimal":
            values.append(Decimal(rng.randint(0, 10_000_000)) / 100)
        elif kind == "date":
            values.append(date(2019, 4, 1) + timedelta(days=rng.randint(0, 2500)))
        elif kind == "datetime":
            values.append(epoch + timedelta(seconds=rng.randint(0, 200_000_000)))
        elif kind == "int":
            values.append(rng.randint(-5, 100_000))
        elif kind == "bool":
            values.append(rng.random() < 0.5)
        else:
            values.append(json.dumps({"gst": k, "note": rng.choice(_WORDS), "tags": ["a", "b"]}))
    return values


_WORDS = ("Paracetamol", "Pune", "invoice", "GSTIN", "27AABCU9603R1ZM", "Śrīnivās", "cash",
          "credit", "Müller", "Mumbai", "C:\\xampp\\htdocs", "https://x.example/a/b", "net 30",
          "O'Brien", "tab\there", "line\nbreak", "50%", "₹ 1,250.00", "", "NULL")


def table_rows(table: WideTable, plan: dict[str, dict[int, int]], first_ids: dict[str, int]
               ) -> Iterator[tuple]:
    """The table's rows as tuples in column order, organization by organization; the ids
    start at ``first_ids[table]`` and a child's parent_id points at a parent row of the same
    organization (``first_ids`` holds every table's first id, in the same layout)."""
    rng = random.Random(table.index)
    pools = [_pool(kind, rng) for kind in table.kinds]
    steps = [rng.choice((1, 3, 7, 11, 13)) for _ in table.kinds]
    stamp = datetime(2026, 1, 5, 9, 30, 0)
    row_id = first_ids[table.name]
    parent_first = first_ids.get(table.parent) if table.parent else None
    parent_offset = 0
    for org, count in plan[table.name].items():
        parent_count = plan[table.parent][org] if table.parent else 0
        for n in range(count):
            head: tuple = (row_id, org)
            if table.parent:
                head += (parent_first + parent_offset + n % parent_count,)
            else:
                head += (f"REF-{org}-{n:07d}",)
            yield head + tuple(pool[(row_id * step) % POOL]
                               for pool, step in zip(pools, steps, strict=True)) + (stamp,)
            row_id += 1
        parent_offset += parent_count


def first_ids(plan: dict[str, dict[int, int]]) -> dict[str, int]:
    """Each table's ids start at 1 (organizations one after the other)."""
    return dict.fromkeys(plan, 1)
