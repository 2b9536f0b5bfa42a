-- Routines and views of the warehouse. SQL SECURITY DEFINER throughout: the application account
-- gets EXECUTE/SELECT on these (090_grants.sql), never privileges on the table.

DELIMITER $$

-- Stores a batch of payments (a JSON array of payment rows as payment_wh_extract returns them)
-- and returns the ids of that batch the warehouse now holds: the mover purges exactly those
-- from the live database. An upsert: loading the same batch again (a crash between load and
-- purge, two movers at once) changes nothing and duplicates nothing.
CREATE OR REPLACE PROCEDURE payment_archive_load(
    IN  p_rows   LONGTEXT,
    OUT p_loaded INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS payment_archive.wh_load: idempotent upsert, returns the ids held (mover only)'
BEGIN
    INSERT INTO payment_archive
           (payment_id, customer_id, rental_id, amount, payment_date, last_update)
    SELECT r.payment_id, r.customer_id, r.rental_id, r.amount, r.payment_date, r.last_update
      FROM JSON_TABLE(p_rows, '$[*]' COLUMNS (
               payment_id   INT UNSIGNED  PATH '$.payment_id' ERROR ON EMPTY,
               customer_id  INT UNSIGNED  PATH '$.customer_id' ERROR ON EMPTY,
               rental_id    INT UNSIGNED  PATH '$.rental_id',
               amount       DECIMAL(6,2)  PATH '$.amount' ERROR ON EMPTY,
               payment_date DATETIME      PATH '$.payment_date' ERROR ON EMPTY,
               last_update  DATETIME      PATH '$.last_update' ERROR ON EMPTY)) AS r
    ON DUPLICATE KEY UPDATE
           customer_id  = VALUES(customer_id),
           rental_id    = VALUES(rental_id),
           amount       = VALUES(amount),
           payment_date = VALUES(payment_date),
           last_update  = VALUES(last_update);

    SELECT a.payment_id
      FROM payment_archive AS a
      JOIN JSON_TABLE(p_rows, '$[*]' COLUMNS (payment_id INT UNSIGNED PATH '$.payment_id')) AS k
        ON k.payment_id = a.payment_id
     ORDER BY a.payment_id;
    SET p_loaded = FOUND_ROWS();
END$$

-- One warehoused payment by id (no rows when it is not in the warehouse).
CREATE OR REPLACE PROCEDURE payment_archive_fetch(IN p_payment_id INT)
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS payment_archive.fetch: one warehoused payment'
BEGIN
    SELECT payment_id, customer_id, rental_id, amount, payment_date, archived_at
      FROM payment_archive
     WHERE payment_id = p_payment_id;
END$$

DELIMITER ;

CREATE OR REPLACE
    ALGORITHM = MERGE
    SQL SECURITY DEFINER
VIEW payment_archive_list AS
SELECT payment_id, customer_id, rental_id, amount, payment_date, archived_at
  FROM payment_archive;
