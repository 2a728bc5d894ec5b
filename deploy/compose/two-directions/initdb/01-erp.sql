-- The demo's legacy ERP schema, created on the first start of the mariadb
-- container. Change rows to see them arrive, signed, at the receiver:
--   UPDATE erp.invoices SET status = 'paid', version = version + 1 WHERE id = 1;
CREATE DATABASE IF NOT EXISTS erp CHARACTER SET utf8mb4;
USE erp;

CREATE TABLE invoices (
  id       BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  customer VARCHAR(255) NOT NULL,
  total    DECIMAL(12,2) NOT NULL,
  status   ENUM('open', 'paid', 'void') NOT NULL DEFAULT 'open',
  version  INT UNSIGNED NOT NULL DEFAULT 1   -- bumped by every update: the receiver logs it
);

INSERT INTO invoices (customer, total) VALUES ('ACME', 120.00), ('Globex', 75.50);
UPDATE invoices SET status = 'paid', version = version + 1 WHERE id = 1;
