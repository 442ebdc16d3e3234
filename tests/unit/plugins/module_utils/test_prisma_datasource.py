"""Where Prisma takes its URLs from, and a migration URL through a connection pool found before it fails."""

from __future__ import annotations

import json

import pytest
from ansible_collections.prismaguard.migrate.plugins.module_utils import prisma_datasource as ds
from ansible_collections.prismaguard.migrate.plugins.module_utils import prisma_migrations as pm

POOL = "postgresql://doadmin:pw@db-x.ondigitalocean.com:25061/backend?sslmode=require"
DIRECT = "postgresql://doadmin:pw@db-x.ondigitalocean.com:25060/backend?sslmode=require"


def app(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return str(tmp_path)


SCHEMA_6 = """
// The datasource.  url = env("NOT_THIS")
datasource db {
  provider  = "postgresql"
  url       = env("DATABASE_URL") // through the pool
  directUrl = env("DIRECT_URL")
}

model users {
  id String @id
}
"""


def test_prisma_6_schema_names_the_app_url_and_the_direct_url(tmp_path):
    found = ds.read_datasource(app(tmp_path, {"prisma/schema.prisma": SCHEMA_6}))
    assert found == {"url": "DATABASE_URL", "direct_url": "DIRECT_URL", "source": "prisma/schema.prisma"}
    assert ds.url_variables(found) == ["DIRECT_URL", "DATABASE_URL"]


def test_a_schema_without_direct_url_migrates_on_its_url(tmp_path):
    schema = 'datasource db {\n  provider = "postgresql"\n  url = env("PG_URL")\n}\n'
    found = ds.read_datasource(app(tmp_path, {"prisma/schema.prisma": schema}))
    assert (found["url"], found["direct_url"]) == ("PG_URL", None)
    assert ds.url_variables(found) == ["PG_URL"]


@pytest.mark.parametrize(
    "expression",
    ["env('DIRECT_URL')", 'env("DIRECT_URL")', "process.env.DIRECT_URL", 'process.env["DIRECT_URL"]',
     "process.env.DIRECT_URL!"],
)  # fmt: skip
def test_prisma_7_config_names_the_url_migrations_use(tmp_path, expression):
    config = (
        "import 'dotenv/config'\nimport { defineConfig, env } from 'prisma/config'\n"
        "// datasource: { url: env('NOT_THIS') }\n"
        "export default defineConfig({\n  schema: 'prisma/schema.prisma',\n"
        f"  datasource: {{\n    url: {expression},\n  }},\n}})\n"
    )
    found = ds.read_datasource(app(tmp_path, {"prisma.config.ts": config, "prisma/schema.prisma": SCHEMA_6}))
    assert found == {"url": "DIRECT_URL", "direct_url": None, "source": "prisma.config.ts"}


def test_a_config_without_a_datasource_leaves_it_to_the_schema(tmp_path):
    config = "export default defineConfig({ schema: 'prisma/schema.prisma', adapter: async () => pg() })\n"
    found = ds.read_datasource(app(tmp_path, {"prisma.config.ts": config, "prisma/schema.prisma": SCHEMA_6}))
    assert found["direct_url"] == "DIRECT_URL"


def test_package_json_and_multi_file_schemas_are_found(tmp_path):
    root = app(tmp_path, {"db/main.prisma": SCHEMA_6, "package.json": json.dumps({"prisma": {"schema": "db"}})})
    assert ds.read_datasource(root)["source"] == "db/main.prisma"


def test_no_schema_or_a_literal_url_means_database_url(tmp_path):
    assert ds.url_variables(ds.read_datasource(str(tmp_path))) == ["DATABASE_URL"]
    schema = 'datasource db {\n  provider = "postgresql"\n  url = "postgresql://u:p@h/db"\n}\n'
    found = ds.read_datasource(app(tmp_path, {"prisma/schema.prisma": schema}))
    assert found["url"] is None and ds.url_variables(found) == ["DATABASE_URL"]


@pytest.mark.parametrize(
    ("url", "why"),
    [(POOL, "port 25061"), ("postgresql://u:p@h:5432/db?pgbouncer=true", "pgbouncer=true"),
     ("postgresql://u:p@h:6432/db", "port 6432"), (DIRECT, None), ("not a url:x", None)],
)  # fmt: skip
def test_a_pool_is_known_by_its_port_or_prismas_pgbouncer_flag(url, why):
    said = ds.pooled(url)
    assert (said is None) if why is None else why in said


def test_a_pooled_url_with_no_direct_url_is_stopped_naming_the_fix():
    said = ds.pool_problem({"DATABASE_URL": POOL}, {"url": "DATABASE_URL", "source": "prisma/schema.prisma"})
    assert 'directUrl = env("DIRECT_URL")' in said and "25060" in said and "prisma/schema.prisma" in said
    assert "pw" not in said
    # The direct URL given: nothing to say. The direct URL through the pool too: said, naming it.
    both = {"url": "DATABASE_URL", "direct_url": "DIRECT_URL", "source": "prisma/schema.prisma"}
    assert ds.pool_problem({"DATABASE_URL": POOL, "DIRECT_URL": DIRECT}, both) is None
    said = ds.pool_problem({"DATABASE_URL": POOL, "DIRECT_URL": POOL}, both)
    assert said.startswith("DIRECT_URL, which migrations run on") and "pw" not in said
    assert ds.pool_problem({"DATABASE_URL": DIRECT}, {"url": "DATABASE_URL"}) is None


def test_tls_failures_name_the_ca_setting_and_other_errors_are_left_alone():
    said = pm.tls_hint('connection to server at "h" failed: SSL error: certificate verify failed')
    assert "sslrootcert" in said and "sslcert" in said and "ca-certificate.crt" in said
    assert pm.tls_hint('root certificate file "/x.crt" does not exist').count("sslrootcert") == 1
    assert pm.tls_hint("password authentication failed for user") == "password authentication failed for user"


def test_every_tls_setting_reaches_pg_dump_through_libpqs_variables():
    params, _ = pm.connection_params(
        "postgresql://u:p@h:25060/db?sslmode=verify-full&sslcert=/etc/ca.crt&channel_binding=require"
    )
    assert pm.libpq_env(params) == {
        "PGHOST": "h", "PGPORT": "25060", "PGUSER": "u", "PGPASSWORD": "p", "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": "/etc/ca.crt", "PGCHANNELBINDING": "require",
    }  # fmt: skip
