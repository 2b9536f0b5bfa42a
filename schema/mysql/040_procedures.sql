-- Stored procedures exposed to BEDS callers (EXECUTE granted in 090_grants.sql).
-- All are SQL SECURITY DEFINER so they can read/write tables the application
-- account has no privileges on. String parameters are declared utf8mb4
-- explicitly so they do not depend on the default character set of the database.

DELIMITER $$

-- One-row primary-key fetch (zero rows when the film does not exist).
CREATE OR REPLACE PROCEDURE film_fetch(IN p_film_id INT)
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS film.fetch: the film_list row for one film'
BEGIN
    SELECT FID, title, category, price, length, rating, release_year
      FROM film_list
     WHERE FID = p_film_id;
END$$

-- Copies of a film at a store that are not in an unreturned rental:
-- result set of inventory_id (ascending) and their count in p_film_count.
CREATE OR REPLACE PROCEDURE film_in_stock(
    IN  p_film_id    INT,
    IN  p_store_id   INT,
    OUT p_film_count INT)
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS film.in_stock: inventory ids in stock, OUT count'
BEGIN
    SELECT i.inventory_id
      FROM inventory AS i
     WHERE i.film_id = p_film_id
       AND i.store_id = p_store_id
       AND NOT EXISTS (SELECT 1
                         FROM rental AS r
                        WHERE r.inventory_id = i.inventory_id
                          AND r.return_date IS NULL)
     ORDER BY i.inventory_id;

    SELECT COUNT(*)
      INTO p_film_count
      FROM inventory AS i
     WHERE i.film_id = p_film_id
       AND i.store_id = p_store_id
       AND NOT EXISTS (SELECT 1
                         FROM rental AS r
                        WHERE r.inventory_id = i.inventory_id
                          AND r.return_date IS NULL);
END$$

-- Two result sets: (1) copies per category held by the store (only
-- categories with at least one copy, ordered by category name),
-- (2) one row: store_id, city, number of customers (zero rows if unknown store).
CREATE OR REPLACE PROCEDURE store_report(IN p_store_id INT)
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS film.store_report: copies per category, store summary'
BEGIN
    SELECT c.name   AS category,
           COUNT(*) AS copies
      FROM inventory AS i
      JOIN film      AS f ON f.film_id = i.film_id
      JOIN category  AS c ON c.category_id = f.category_id
     WHERE i.store_id = p_store_id
     GROUP BY c.category_id, c.name
     ORDER BY c.name;

    SELECT s.store_id,
           s.city,
           (SELECT COUNT(*) FROM customer AS cu WHERE cu.store_id = s.store_id) AS customers
      FROM store AS s
     WHERE s.store_id = p_store_id;
END$$

-- One row from customer_list (never pin_hash), zero rows when absent.
CREATE OR REPLACE PROCEDURE customer_fetch(IN p_customer_id INT)
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS customer.fetch: the customer_list row for one customer'
BEGIN
    SELECT customer_id, first_name, last_name, email, store_id, active, created_at
      FROM customer_list
     WHERE customer_id = p_customer_id;
END$$

-- Creates a customer. Unknown store -> SQLSTATE 45000 unknown store_id
-- (error 1644). Duplicate email -> the normal duplicate-key error 1062 (not
-- caught). The new id is returned both as OUT p_customer_id and as a
-- one-row result set (customer_id).
CREATE OR REPLACE PROCEDURE customer_create(
    IN  p_store_id    INT,
    IN  p_first_name  VARCHAR(45)  CHARACTER SET utf8mb4,
    IN  p_last_name   VARCHAR(45)  CHARACTER SET utf8mb4,
    IN  p_email       VARCHAR(100) CHARACTER SET utf8mb4,
    IN  p_pin         VARCHAR(64)  CHARACTER SET utf8mb4,
    OUT p_customer_id INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS customer.create: insert a customer, OUT/result new id'
BEGIN
    IF p_store_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM store WHERE store_id = p_store_id) THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'unknown store_id';
    END IF;

    INSERT INTO customer
        (store_id, first_name, last_name, email, pin_hash, active, created_at)
    VALUES
        (p_store_id, p_first_name, p_last_name, p_email,
         IF(p_pin IS NULL, NULL, SHA2(p_pin, 256)),
         TRUE, NOW());

    SET p_customer_id = LAST_INSERT_ID();
    SELECT p_customer_id AS customer_id;
END$$

-- OUT p_updated = ROW_COUNT(): 1 when the email changed, 0 when the customer
-- does not exist or already had that email (affected rows, unless the client
-- connects with CLIENT_FOUND_ROWS). Duplicate email -> error 1062.
CREATE OR REPLACE PROCEDURE customer_update_email(
    IN  p_customer_id INT,
    IN  p_email       VARCHAR(100) CHARACTER SET utf8mb4,
    OUT p_updated     INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS customer.update_email: OUT number of rows updated'
BEGIN
    UPDATE customer
       SET email = p_email
     WHERE customer_id = p_customer_id;
    SET p_updated = ROW_COUNT();
END$$

-- Records a payment (not tied to a rental). Unknown customer -> SQLSTATE
-- 45000 unknown customer_id. A NULL p_paid_at means now.
CREATE OR REPLACE PROCEDURE payment_add(
    IN  p_customer_id INT,
    IN  p_amount      DECIMAL(6,2),
    IN  p_paid_at     DATETIME,
    OUT p_payment_id  INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS customer.add_payment: insert a payment, OUT new id'
BEGIN
    IF p_customer_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM customer WHERE customer_id = p_customer_id) THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'unknown customer_id';
    END IF;

    INSERT INTO payment (customer_id, rental_id, amount, payment_date)
    VALUES (p_customer_id, NULL, p_amount, COALESCE(p_paid_at, NOW()));

    SET p_payment_id = LAST_INSERT_ID();
END$$

DELIMITER ;
