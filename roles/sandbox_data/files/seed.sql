-- Sample production rows for release 1's tables, deterministic and
-- idempotent: a second run inserts nothing and reports 0.
WITH
c AS (
  INSERT INTO customers (id, email, company_name, phone, status, created_at, updated_at)
  SELECT 'cus_' || lpad(i::text, 5, '0'), 'owner' || i || '@example.com', 'Company ' || i,
         '+23480' || lpad(i::text, 8, '0'), CASE WHEN i % 17 = 0 THEN 'suspended' ELSE 'active' END,
         timestamp '2024-02-01' + i * interval '7 hours', timestamp '2024-02-01' + i * interval '7 hours'
  FROM generate_series(1, 200) AS i
  ON CONFLICT DO NOTHING RETURNING 1),
u AS (
  INSERT INTO users (id, customer_id, email, name, role, password_hash, created_at, updated_at)
  SELECT 'usr_' || lpad(i::text, 5, '0'), 'cus_' || lpad((1 + (i - 1) % 200)::text, 5, '0'),
         'user' || i || '@example.com', 'User ' || i,
         CASE WHEN i <= 5 THEN 'admin' WHEN i % 3 = 0 THEN 'manager' ELSE 'owner' END,
         md5('password' || i), timestamp '2024-02-02' + i * interval '3 hours',
         timestamp '2024-02-02' + i * interval '3 hours'
  FROM generate_series(1, 400) AS i
  ON CONFLICT DO NOTHING RETURNING 1),
p AS (
  INSERT INTO properties (id, customer_id, name, address, city, created_at)
  SELECT 'prp_' || lpad(i::text, 5, '0'), 'cus_' || lpad((1 + (i - 1) % 200)::text, 5, '0'),
         'Property ' || i, i || ' Marina Road', (ARRAY['Lagos', 'Abuja', 'Ibadan', 'Kano'])[1 + i % 4],
         timestamp '2024-03-01' + i * interval '5 hours'
  FROM generate_series(1, 300) AS i
  ON CONFLICT DO NOTHING RETURNING 1),
pay AS (
  INSERT INTO payments (id, customer_id, amount, currency, status, reference, provider, created_at)
  SELECT 'pay_' || lpad(i::text, 5, '0'), 'cus_' || lpad((1 + (i - 1) % 200)::text, 5, '0'),
         round((5000 + (i * 7919) % 250000)::numeric / 100, 2), 'NGN',
         (ARRAY['success', 'success', 'success', 'failed', 'pending'])[1 + i % 5],
         'ref_' || md5('payment' || i), 'paystack', timestamp '2024-03-01' + i * interval '90 minutes'
  FROM generate_series(1, 1000) AS i
  ON CONFLICT DO NOTHING RETURNING 1),
s AS (
  INSERT INTO subscriptions (id, customer_id, plan, status, current_period_end, created_at)
  SELECT 'sub_' || lpad(i::text, 5, '0'), 'cus_' || lpad(i::text, 5, '0'),
         (ARRAY['starter', 'growth', 'enterprise'])[1 + i % 3],
         CASE WHEN i % 11 = 0 THEN 'cancelled' ELSE 'active' END,
         timestamp '2026-01-01' + i * interval '1 day', timestamp '2024-02-01' + i * interval '1 day'
  FROM generate_series(1, 150) AS i
  ON CONFLICT DO NOTHING RETURNING 1),
d AS (
  INSERT INTO documents (id, customer_id, property_id, file_name, spaces_key, uploaded_at)
  SELECT 'doc_' || lpad(i::text, 5, '0'), 'cus_' || lpad((1 + (i - 1) % 200)::text, 5, '0'),
         CASE WHEN i % 4 = 0 THEN NULL ELSE 'prp_' || lpad((1 + (i - 1) % 300)::text, 5, '0') END,
         'lease-' || i || '.pdf', 'documents/' || md5('doc' || i) || '.pdf',
         timestamp '2024-04-01' + i * interval '4 hours'
  FROM generate_series(1, 500) AS i
  ON CONFLICT DO NOTHING RETURNING 1)
SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM u) + (SELECT count(*) FROM p)
     + (SELECT count(*) FROM pay) + (SELECT count(*) FROM s) + (SELECT count(*) FROM d) AS inserted
