// Prisma configuration that runs the real schema engine offline (see
// prisma/offline/README.md). Only the sandbox's sample backend needs this.
import path from 'node:path'
import { defineConfig } from 'prisma/config'
import { PrismaPg } from '@prisma/adapter-pg'
// The adapter's own dependency (same version), whose error type the schema engine reads.
import { DriverAdapterError } from '@prisma/driver-adapter-utils'

const offline = path.join(__dirname, 'prisma', 'offline')
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= path.join(offline, 'schema-engine')
process.env.PRISMA_QUERY_ENGINE_LIBRARY ??= path.join(offline, 'libquery_engine.so.node')

// The adapter rejects the catalog types name (OID 19) and "char" (OID 18)
// that migrate reads while introspecting: present them as text.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Result = require('pg/lib/result')
const addFields = Result.prototype.addFields
Result.prototype.addFields = function (fields: Array<{ dataTypeID: number }>) {
  for (const f of fields) if (f.dataTypeID === 19 || f.dataTypeID === 18) f.dataTypeID = 25
  return addFields.call(this, fields)
}

// The WebAssembly engine arms a 10 s timer (the wait for its advisory lock) and
// leaves it armed once the lock is taken: every deploy and resolve then idled
// 10 s before the process exited. Such timers are unref'd: they still fire
// while the CLI works, and no longer hold it open when it is done.
const armTimer = global.setTimeout
global.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const timer = armTimer(fn, ms, ...args)
  if ((ms ?? 0) >= 10000) timer.unref()
  return timer
}) as typeof setTimeout

// Migrations use the schema's directUrl (DIRECT_URL), as the native engine does, else DATABASE_URL.
// Host, port, user, database and TLS (sslmode, sslrootcert) are read by pg's own parser and passed
// separately: with a connectionString the adapter would use the main database as its shadow database.
// The URL's `options` (startup options such as `-c lock_timeout=2000ms`) are sent as the native engine
// sends them. A short idle timeout keeps the pool from holding every command open for 10 s at exit.
function poolConfig () {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parse } = require('pg-connection-string')
  const { host, port, user, password, database, ssl, options } = parse(process.env.DIRECT_URL || process.env.DATABASE_URL || '')
  return { host, port: Number(port || 5432), user, password, database, ssl, options, idleTimeoutMillis: 200 }
}

// The adapter splits a migration on ";" and runs the pieces one by one, which
// leaves a failed migration half-applied and breaks DO $$ ... $$ bodies. Send
// the whole script as one query, as the native engine does: all or nothing.
class WholeScriptPg extends PrismaPg {
  async connect () {
    const adapter = await super.connect()
    const pool = adapter.underlyingDriver()
    adapter.executeScript = async (script: string) => {
      try {
        await pool.query(script)
      } catch (error) {
        // The adapter turns 23502, 23505, 23503, ... into Prisma's kinds, which the CLI prints without
        // PostgreSQL's words ("Null constraint failed:"), and drops every code. A migration's failure is
        // told as the native engine tells it: PostgreSQL's message, its SQLSTATE, DETAIL and HINT.
        const e = error as { code?: unknown, severity?: unknown, message?: unknown, detail?: string, hint?: string }
        if (typeof e?.code === 'string' && typeof e.message === 'string' && typeof e.severity === 'string') {
          const lines = [`${e.message} (SQLSTATE ${e.code})`, e.detail && `DETAIL: ${e.detail}`, e.hint && `HINT: ${e.hint}`]
          // code 'N/A' (what the adapter sends when it has none) keeps the engine from mapping it again.
          throw new DriverAdapterError({ kind: 'postgres', code: 'N/A', severity: e.severity, message: lines.filter(Boolean).join('\n') })
        }
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        (adapter as any).onError(error)
      }
    }
    return adapter
  }
}

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  adapter: async () => new WholeScriptPg(poolConfig()),
})
