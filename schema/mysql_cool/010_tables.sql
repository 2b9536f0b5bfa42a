-- The warehouse (COOL) datasource of the example: payments the segundo role moved out of the
-- live database (schema/mysql/080_warehouse.sql). Applied with
-- `beds schema apply --datasource cool` (`make schema` does both). No foreign keys: the
-- customers and rentals stay in the live database.

CREATE TABLE IF NOT EXISTS payment_archive (
    payment_id    INT UNSIGNED NOT NULL,
    customer_id   INT UNSIGNED NOT NULL,
    rental_id     INT UNSIGNED NULL,
    amount        DECIMAL(6,2) NOT NULL,
    payment_date  DATETIME NOT NULL,
    last_update   DATETIME NOT NULL,
    archived_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (payment_id),
    KEY idx_archive_customer_date (customer_id, payment_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
