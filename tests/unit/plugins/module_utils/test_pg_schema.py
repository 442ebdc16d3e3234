"""Schema expectations compared with a catalog, without a database."""

from __future__ import annotations

import pytest
from ansible_collections.prismaguard.migrate.plugins.module_utils import pg_schema


@pytest.mark.parametrize(
    ("written", "catalog"),
    [
        ("TIMESTAMP(3)", "timestamp(3) without time zone"),
        ("timestamptz", "timestamp with time zone"),
        ("timestamptz(3)", "timestamp(3) with time zone"),
        ("int4", "integer"),
        ("int8", "bigint"),
        ("bool", "boolean"),
        ("varchar(20)", "character varying(20)"),
        ("DECIMAL(12, 2)", "numeric(12,2)"),
        ("float8", "double precision"),
        ("jsonb", "jsonb"),
        ("text[]", "text[]"),
    ],
)
def test_type_spellings_normalize_to_what_format_type_prints(written, catalog):
    assert pg_schema.normalize_type(written) == pg_schema.normalize_type(catalog) == catalog


ACTUAL = {
    "tables": {"customers", "verification_requests"},
    "columns": {
        "verification_requests": {
            "id": ("text", False),
            "customer_id": ("text", False),
            "status": ("character varying(20)", True),
        }
    },
    "indexes": {"verification_requests": [("verification_requests_status_idx", False, ["status"])]},
    "foreign_keys": {
        "verification_requests": [("verification_requests_customer_id_fkey", "customers", ["customer_id"], ["id"])]
    },
}


def test_a_matching_catalog_has_no_mismatches():
    expect = {
        "tables": {
            "customers": None,
            "verification_requests": {
                "columns": {"id": "text", "customer_id": {"type": "TEXT", "nullable": False}},
                "indexes": ["verification_requests_status_idx", {"columns": ["status"]}],
                "foreign_keys": [
                    "verification_requests_customer_id_fkey",
                    {"columns": ["customer_id"], "references": "customers(id)"},
                    {"columns": ["customer_id"], "references": "customers"},
                ],
            },
        }
    }
    assert pg_schema.compare(expect, ACTUAL) == []


def test_every_kind_of_difference_is_a_readable_diff_line():
    expect = {
        "tables": {
            "provider_logs": {},
            "verification_requests": {
                "columns": {"status": {"type": "text", "nullable": False}, "reviewed_by": "text"},
                "indexes": [{"columns": ["status"], "unique": True}],
                "foreign_keys": [{"columns": ["reviewed_by"], "references": "users(id)"}],
            },
        }
    }
    lines = [m["line"] for m in pg_schema.compare(expect, ACTUAL)]
    assert lines == [
        "- table provider_logs: missing",
        "- column verification_requests.reviewed_by: missing",
        "~ column verification_requests.status: expected text, found character varying(20)",
        "~ column verification_requests.status: expected NOT NULL, found NULL",
        "- index on verification_requests: unique (status) missing",
        "- foreign key on verification_requests: (reviewed_by) -> users(id) missing",
    ]


def test_a_malformed_reference_is_an_error_not_a_pass():
    with pytest.raises(ValueError, match="table or table"):
        pg_schema.parse_reference("customers(id")


def test_an_enum_type_compares_as_postgresql_names_it_quoted_or_not():
    # format_type() prints a mixed-case enum quoted; an expectation may write it either way.
    assert pg_schema.normalize_type('"EnvelopeType"') == pg_schema.normalize_type("EnvelopeType")
    assert pg_schema.normalize_type('"EnvelopeType"[]') == pg_schema.normalize_type("EnvelopeType[]")
    assert pg_schema.normalize_type('"EnvelopeType"') != pg_schema.normalize_type('"DocumentStatus"')
