CREATE TABLE accounts (
  id integer PRIMARY KEY,
  owner text NOT NULL,
  balance integer NOT NULL CHECK (balance >= 0)
);
CREATE TABLE transfers (
  id integer PRIMARY KEY,
  source integer NOT NULL REFERENCES accounts ON DELETE CASCADE,
  target integer NOT NULL REFERENCES accounts ON DELETE CASCADE,
  amount integer NOT NULL
);
