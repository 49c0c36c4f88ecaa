-- 1,000 customers with 100.00 of credit each, 200 products with 100 in
-- stock, 5,000 orders and 15,000 order lines.
INSERT INTO customers (id, name, email, credit_cents)
SELECT n, 'Customer ' || n, 'customer' || n || '@example.com', 10000 FROM generate_series(1, 1000) AS n;

INSERT INTO products (id, name, category, price_cents, stock)
SELECT n, 'Product ' || n, (ARRAY['books', 'games', 'tools', 'food'])[1 + n % 4], 1000 + n, 100 FROM generate_series(1, 200) AS n;

INSERT INTO orders (id, customer_id, status)
SELECT n, 1 + n % 1000, (ARRAY['open', 'paid', 'shipped'])[1 + n % 3] FROM generate_series(1, 5000) AS n;
SELECT setval(pg_get_serial_sequence('orders', 'id'), 5000);

INSERT INTO order_items (order_id, product_id, quantity)
SELECT o, 1 + (o * 7 + k * 13) % 200, 1 + k FROM generate_series(1, 5000) AS o, generate_series(0, 2) AS k;
