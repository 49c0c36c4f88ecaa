-- 1000 accounts of 100 each; every test file starts from exactly this.
INSERT INTO accounts (id, owner, balance)
SELECT n, 'owner ' || n, 100 FROM generate_series(1, 1000) AS n;
