CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price_cents int NOT NULL CHECK (price_cents > 0), stock int NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, product_id int NOT NULL REFERENCES products, quantity int NOT NULL);
