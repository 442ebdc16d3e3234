'use strict'
// Sample backend standing for the runbook's Node.js + Prisma + PostgreSQL app.
// Endpoints are the runbook's three health checks and one write (a payment, idempotent by its key,
// which no health check needs); everything is logged to stdout.
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { Pool } = require('pg')

// Load .env like dotenv does (values already in the environment win), so the
// app behaves the same under PM2, systemd and Docker Compose.
function loadEnvFile (file) {
  if (!fs.existsSync(file)) return
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/)
    if (!m || m[1] in process.env) continue
    process.env[m[1]] = m[2].replace(/^(['"])(.*)\1$/, '$2')
  }
}
loadEnvFile(path.join(__dirname, '.env'))

const pkg = require('./package.json')
const startedAt = new Date().toISOString()

function log (level, msg) {
  process.stdout.write(`${new Date().toISOString()} ${level} [${process.pid}] ${msg}\n`)
}

if (!process.env.DATABASE_URL) {
  log('ERROR', 'DATABASE_URL is not set; refusing to start')
  process.exit(1)
}
for (const name of ['SPACES_KEY', 'SPACES_SECRET', 'SPACES_BUCKET', 'SPACES_ENDPOINT', 'PAYSTACK_SECRET_KEY']) {
  if (!process.env[name]) log('WARN', `${name} is not set`)
}

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 5, connectionTimeoutMillis: 3000 })
pool.on('error', (err) => log('ERROR', `database pool: ${err.message}`))

function bearer (req) {
  const m = (req.headers.authorization || '').match(/^Bearer\s+(.+)$/i)
  return m ? m[1] : null
}

function roleOf (token) {
  if (token && token === process.env.APP_ADMIN_TOKEN) return 'admin'
  if (token && token === process.env.APP_SESSION_TOKEN) return 'user'
  return null
}

const routes = {
  async '/api/health' () {
    await pool.query('SELECT 1')
    return [200, { status: 'ok', database: 'up', version: pkg.version, pid: process.pid, startedAt }]
  },
  async '/api/auth/validate-session' (req) {
    const role = roleOf(bearer(req))
    return role ? [200, { valid: true, role }] : [401, { valid: false }]
  },
  async '/api/admin/verification/requests' (req) {
    const role = roleOf(bearer(req))
    if (role !== 'admin') return [role ? 403 : 401, { error: 'admin token required' }]
    const { rows } = await pool.query(
      'SELECT id, status, created_at FROM verification_requests ORDER BY created_at DESC LIMIT 50')
    return [200, { requests: rows }]
  }
}

function readJson (req) {
  return new Promise((resolve, reject) => {
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => {
      text += chunk
      if (text.length > 10000) reject(new Error('request body too large'))
    })
    req.on('end', () => {
      try { resolve(text ? JSON.parse(text) : {}) } catch (err) { reject(err) }
    })
    req.on('error', reject)
  })
}

// Writes, as production takes them during a run: one row per request; a retry with the same
// Idempotency-Key writes nothing more (201 created, 200 already there).
const writes = {
  async '/api/payments' (req) {
    if (!roleOf(bearer(req))) return [401, { error: 'session token required' }]
    const key = req.headers['idempotency-key'] || ''
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(key)) return [400, { error: 'Idempotency-Key header required' }]
    const body = await readJson(req)
    const amount = Number(body.amount ?? 1)
    if (!(amount > 0)) return [400, { error: 'amount must be positive' }]
    const { rows } = await pool.query(
      `INSERT INTO payments (id, customer_id, amount, status, reference)
       SELECT $1, COALESCE($2, (SELECT id FROM customers ORDER BY id LIMIT 1)), $3, 'pending', $4
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      ['w-' + key, body.customerId || null, amount, 'ref-' + key])
    return [rows.length ? 201 : 200, { id: 'w-' + key, created: rows.length > 0 }]
  }
}

const server = http.createServer(async (req, res) => {
  const t0 = Date.now()
  const url = new URL(req.url, 'http://localhost')
  const handler = (req.method === 'GET' && routes[url.pathname]) || (req.method === 'POST' && writes[url.pathname])
  let status = 404
  let body = { error: 'not found' }
  if (handler) {
    try {
      [status, body] = await handler(req)
    } catch (err) {
      status = url.pathname === '/api/health' ? 503 : 500
      body = { error: 'internal error' }
      log('ERROR', `${req.method} ${url.pathname}: ${err.message}`)
    }
  }
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
  log('INFO', `${req.method} ${url.pathname} ${status} ${Date.now() - t0}ms`)
})

const port = Number(process.env.PORT || 3000)
server.listen(port, () => {
  log('INFO', `sample-backend ${pkg.version} listening on ${port}`)
  if (process.send) process.send('ready')
})

function shutdown (signal) {
  log('INFO', `${signal} received, shutting down`)
  server.close(() => pool.end().finally(() => process.exit(0)))
  setTimeout(() => process.exit(0), 5000).unref()
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
