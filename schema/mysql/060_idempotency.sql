-- Idempotent writes: the pattern for DBAs.
--
-- A write op that must run at most once per request takes an idempotency key as its FIRST
-- parameter (the template names it with `idempotency_key = "request_id"`; BEDS fills it from the
-- AMQP message_id when the caller does not pass it). BEDS never passes the caller's raw value:
-- it passes a SHA-256 (64 hex digits) over the op (template.op), the caller (AMQP user_id) and
-- that value (beds/idempotency.py), so two callers sharing a message id, or two ops given the
-- same id, never see each other's outcome. The procedure records the key in the SAME
-- transaction as the write, with a hash of its params. A repeat - a client retry after a
-- timeout, a redelivery after a node died before its ack, two copies racing - finds the key and
-- returns the stored outcome instead of doing the work again:
--   * the INSERT into request_log comes first: a concurrent duplicate blocks on its row lock
--     until the first commits, then fails with 1062 and reads the stored result, with a
--     locking read (LOCK IN SHARE MODE): that reads the latest committed row, where a plain
--     SELECT under REPEATABLE READ reads the transaction's snapshot, which can be older than
--     the first copy's commit and miss its row (a NULL id: seen once in 8 racing copies);
--   * if the first rolled back, the duplicate's INSERT succeeds and it does the work itself;
--   * the same key with different params is a caller's bug, not a repeat: error 1062 with
--     'idempotency key reused with different params' (CONFLICT), nothing runs.
-- The 1062 handler for the key INSERT lives in a block of its own, so that the SIGNAL below and
-- a duplicate key of the write itself stay errors.

CREATE TABLE IF NOT EXISTS request_log (
    request_id  VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
    op          VARCHAR(64) NOT NULL,
    result_id   BIGINT NULL,
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    params_hash CHAR(64) CHARACTER SET ascii NULL
) ENGINE = InnoDB;

-- A request_log made before keys carried a params hash (NULL there: not compared).
ALTER TABLE request_log ADD COLUMN IF NOT EXISTS params_hash CHAR(64) CHARACTER SET ascii NULL;

DELIMITER $$

CREATE OR REPLACE PROCEDURE payment_record(
    -- Same charset as request_log.request_id: a mismatched collation turns the key lookups into
    -- scans that lock every row, and concurrent writes then deadlock.
    IN  p_request_id  VARCHAR(64) CHARACTER SET ascii,
    IN  p_customer_id INT,
    IN  p_amount      DECIMAL(6,2),
    IN  p_paid_at     DATETIME,
    OUT p_payment_id  INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS customer.pay: record a payment once per scoped request id, OUT its id'
BEGIN
    DECLARE v_repeat BOOL DEFAULT FALSE;
    DECLARE v_hash CHAR(64) CHARACTER SET ascii
        DEFAULT SHA2(JSON_ARRAY(p_customer_id, p_amount, p_paid_at), 256);
    DECLARE v_stored CHAR(64) CHARACTER SET ascii;
    BEGIN
        DECLARE CONTINUE HANDLER FOR 1062 SET v_repeat = TRUE;
        INSERT INTO request_log (request_id, op, params_hash)
        VALUES (p_request_id, 'payment_record', v_hash);
    END;
    IF v_repeat THEN
        SELECT result_id, params_hash INTO p_payment_id, v_stored
          FROM request_log WHERE request_id = p_request_id LOCK IN SHARE MODE;
        IF v_stored <> v_hash THEN
            SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062,
                MESSAGE_TEXT = 'idempotency key reused with different params';
        END IF;
    ELSE
        IF p_customer_id IS NULL
           OR NOT EXISTS (SELECT 1 FROM customer WHERE customer_id = p_customer_id) THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'unknown customer_id';
        END IF;
        INSERT INTO payment (customer_id, rental_id, amount, payment_date)
        VALUES (p_customer_id, NULL, p_amount, COALESCE(p_paid_at, NOW()));
        SET p_payment_id = LAST_INSERT_ID();
        UPDATE request_log SET result_id = p_payment_id WHERE request_id = p_request_id;
    END IF;
END$$

DELIMITER ;
