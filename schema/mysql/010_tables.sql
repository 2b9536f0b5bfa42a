-- BEDS example schema: a small film-rental store (sakila-like).
-- Owned by the DBA. Applied in file-name order after CREATE DATABASE / USE,
-- so no database name appears here. Idempotent: safe to apply repeatedly.
-- Callers never touch these tables: they only get EXECUTE on procedures /
-- functions and SELECT on views (see 090_grants.sql).

CREATE TABLE IF NOT EXISTS category (
    category_id  TINYINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name         VARCHAR(25) NOT NULL,
    last_update  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (category_id),
    UNIQUE KEY uq_category_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS film (
    film_id       INT UNSIGNED NOT NULL AUTO_INCREMENT,
    title         VARCHAR(128) NOT NULL,
    description   TEXT NULL,
    category_id   TINYINT UNSIGNED NOT NULL,
    release_year  SMALLINT UNSIGNED NOT NULL,
    rental_rate   DECIMAL(4,2) NOT NULL DEFAULT 4.99,
    length        SMALLINT UNSIGNED NULL,
    rating        ENUM('G','PG','PG-13','R','NC-17') NOT NULL DEFAULT 'G',
    last_update   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (film_id),
    KEY idx_film_title (title),
    KEY idx_film_category (category_id),
    CONSTRAINT fk_film_category FOREIGN KEY (category_id)
        REFERENCES category (category_id) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS store (
    store_id     TINYINT UNSIGNED NOT NULL AUTO_INCREMENT,
    city         VARCHAR(50) NOT NULL,
    last_update  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (store_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS inventory (
    inventory_id  INT UNSIGNED NOT NULL AUTO_INCREMENT,
    film_id       INT UNSIGNED NOT NULL,
    store_id      TINYINT UNSIGNED NOT NULL,
    last_update   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (inventory_id),
    KEY idx_inventory_store_film (store_id, film_id),
    CONSTRAINT fk_inventory_film FOREIGN KEY (film_id)
        REFERENCES film (film_id) ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT fk_inventory_store FOREIGN KEY (store_id)
        REFERENCES store (store_id) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS customer (
    customer_id  INT UNSIGNED NOT NULL AUTO_INCREMENT,
    store_id     TINYINT UNSIGNED NOT NULL,
    first_name   VARCHAR(45) NOT NULL,
    last_name    VARCHAR(45) NOT NULL,
    email        VARCHAR(100) NOT NULL,
    pin_hash     VARBINARY(64) NULL,
    active       BOOL NOT NULL DEFAULT TRUE,
    created_at   DATETIME NOT NULL,
    last_update  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (customer_id),
    UNIQUE KEY uq_customer_email (email),
    KEY idx_customer_store (store_id),
    KEY idx_customer_last_name (last_name),
    CONSTRAINT fk_customer_store FOREIGN KEY (store_id)
        REFERENCES store (store_id) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS rental (
    rental_id     INT UNSIGNED NOT NULL AUTO_INCREMENT,
    inventory_id  INT UNSIGNED NOT NULL,
    customer_id   INT UNSIGNED NOT NULL,
    rental_date   DATETIME NOT NULL,
    return_date   DATETIME NULL,
    last_update   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (rental_id),
    KEY idx_rental_inventory (inventory_id, return_date),
    KEY idx_rental_customer (customer_id),
    CONSTRAINT fk_rental_inventory FOREIGN KEY (inventory_id)
        REFERENCES inventory (inventory_id) ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT fk_rental_customer FOREIGN KEY (customer_id)
        REFERENCES customer (customer_id) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS payment (
    payment_id    INT UNSIGNED NOT NULL AUTO_INCREMENT,
    customer_id   INT UNSIGNED NOT NULL,
    rental_id     INT UNSIGNED NULL,
    amount        DECIMAL(6,2) NOT NULL,
    payment_date  DATETIME NOT NULL,
    last_update   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (payment_id),
    KEY idx_payment_customer_date (customer_id, payment_date),
    CONSTRAINT fk_payment_customer FOREIGN KEY (customer_id)
        REFERENCES customer (customer_id) ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT fk_payment_rental FOREIGN KEY (rental_id)
        REFERENCES rental (rental_id) ON DELETE SET NULL ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
