INSERT INTO products VALUES (1, 'kettle', 2500, 10), (2, 'teapot', 4000, 3), (3, 'mug', 800, 50);
