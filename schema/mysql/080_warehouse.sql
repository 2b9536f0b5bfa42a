-- Warehouse (segundo), HOT side: aged payments leave this database for the warehouse datasource
-- (`cool`, schema/mysql_cool/) through templates/segundo/payments.toml, whose ops only the
-- whBroker mover calls (they are bound to no queue). The mover runs, per batch:
--   payment_wh_extract -> payment_archive_load (COOL) -> payment_wh_purge(the keys COOL holds)
-- so a row is deleted here only after the warehouse confirmed it. Both routines take the age in
-- seconds and compare with this server's NOW(): the node's clock and time zone never matter.
-- A payment is never updated after it is recorded, which is what makes purge-by-key safe.

CREATE INDEX IF NOT EXISTS idx_payment_date ON payment (payment_date);

DELIMITER $$

-- Up to p_batch_size payments older than p_age_seconds, after p_after_key (NULL: from the
-- start), in key order: the mover resumes after the last key of each batch.
CREATE OR REPLACE PROCEDURE payment_wh_extract(
    IN p_age_seconds INT,
    IN p_after_key   INT,
    IN p_batch_size  INT)
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS payments.wh_extract: aged payments in key order (warehouse mover only)'
BEGIN
    SELECT payment_id, customer_id, rental_id, amount, payment_date, last_update
      FROM payment
     WHERE payment_date < NOW() - INTERVAL p_age_seconds SECOND
       AND (p_after_key IS NULL OR payment_id > p_after_key)
     ORDER BY payment_id
     LIMIT p_batch_size;
END$$

-- Deletes the payments whose ids are in p_keys (a JSON array the warehouse confirmed) and that
-- are still older than p_age_seconds; p_purged is how many went. Running it twice is harmless.
CREATE OR REPLACE PROCEDURE payment_wh_purge(
    IN  p_keys        LONGTEXT,
    IN  p_age_seconds INT,
    OUT p_purged      INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS payments.wh_purge: delete warehoused payments by id (warehouse mover only)'
BEGIN
    DELETE p
      FROM payment AS p
      JOIN JSON_TABLE(p_keys, '$[*]' COLUMNS (payment_id INT UNSIGNED PATH '$')) AS k
        ON k.payment_id = p.payment_id
     WHERE p.payment_date < NOW() - INTERVAL p_age_seconds SECOND;
    SET p_purged = ROW_COUNT();
END$$

DELIMITER ;

-- Here rather than in 090_grants.sql: this file recreates the routines, so it restores their
-- grants itself. templates/segundo/payments.toml
GRANT EXECUTE ON PROCEDURE payment_wh_extract TO ${app_user};
GRANT EXECUTE ON PROCEDURE payment_wh_purge   TO ${app_user};
