-- The demo's "legacy" schema, created on the first start of the mariadb
-- container. Insert, update and delete rows to see CloudEvents on Kafka.
CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4;
USE shop;

CREATE TABLE customers (
  id            BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  email         VARCHAR(255) NOT NULL UNIQUE,
  name          VARCHAR(255) NOT NULL,
  password_hash VARBINARY(64),          -- excluded from events by ferry.yaml
  created_at    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
);

CREATE TABLE orders (
  id          BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  customer_id BIGINT UNSIGNED NOT NULL,
  total       DECIMAL(12,2) NOT NULL,
  status      ENUM('placed', 'paid', 'shipped', 'cancelled') NOT NULL DEFAULT 'placed',
  items       JSON,
  created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  FOREIGN KEY (customer_id) REFERENCES customers (id)
);

INSERT INTO customers (email, name, password_hash) VALUES
  ('ada@example.com', 'Ada', UNHEX(SHA2('not-a-real-password', 256))),
  ('grace@example.com', 'Grace', UNHEX(SHA2('nor-this-one', 256)));
INSERT INTO orders (customer_id, total, items) VALUES
  (1, 42.50, '[{"sku": "A-1", "qty": 2}]'),
  (2, 9.99, '[{"sku": "B-7", "qty": 1}]');
UPDATE orders SET status = 'paid' WHERE id = 1;
