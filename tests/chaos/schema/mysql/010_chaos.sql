-- Test-only objects of the fault-injection suite (tests/chaos), applied after schema/mysql/ to
-- the session's database and to every private MariaDB a scenario starts; never shipped. Same
-- least-privilege shape as schema/mysql: SQL SECURITY DEFINER routines, EXECUTE/SELECT grants
-- only, nothing on the tables.
--  * chaos_knob: how many rows the slow ops scan - big while the "slow database" fault lasts
--  * chaos_slow_pay: an idempotent payment (payment_record), THEN a real scan (a slow commit)
--  * chaos_scan: a read that scans as long as the knob says (or p_rows, when given)
--  * chaos_big: a view whose rows are ~1 KiB each (an oversized reply at any sane cap)
--  * chaos_count_pay + chaos_exec: a NON-idempotent payment that records every execution that
--    committed (request tag, attempt = how many ran before, connection), so the checker can
--    tell how often BEDS ran one request ("re-executed"), whatever the caller saw.

CREATE TABLE IF NOT EXISTS chaos_knob (id INT PRIMARY KEY, scan_rows BIGINT NOT NULL);
INSERT IGNORE INTO chaos_knob VALUES (1, 0);

CREATE TABLE IF NOT EXISTS chaos_exec (
    exec_id     BIGINT AUTO_INCREMENT PRIMARY KEY,
    tag         VARCHAR(64) CHARACTER SET ascii NOT NULL,
    attempt     INT NOT NULL,
    payment_id  INT NOT NULL,
    conn        BIGINT NOT NULL,
    executed_at DATETIME(6) NOT NULL DEFAULT NOW(6),
    KEY idx_chaos_exec_tag (tag)
) ENGINE = InnoDB;

DELIMITER $$

CREATE OR REPLACE PROCEDURE chaos_slow_pay(
    IN p_request_id VARCHAR(64) CHARACTER SET ascii, IN p_customer_id INT,
    IN p_amount DECIMAL(6,2), IN p_paid_at DATETIME, OUT p_payment_id INT)
    MODIFIES SQL DATA SQL SECURITY DEFINER
BEGIN
    DECLARE v_rows BIGINT;
    DECLARE v_n BIGINT;
    CALL payment_record(p_request_id, p_customer_id, p_amount, p_paid_at, p_payment_id);
    SELECT scan_rows INTO v_rows FROM chaos_knob WHERE id = 1;
    SELECT COUNT(*) INTO v_n FROM seq_1_to_1000000000 WHERE seq <= v_rows AND seq % 7 = 3;
END$$

CREATE OR REPLACE PROCEDURE chaos_count_pay(
    IN p_tag VARCHAR(64) CHARACTER SET ascii, IN p_customer_id INT,
    IN p_amount DECIMAL(6,2), IN p_paid_at DATETIME, OUT p_payment_id INT)
    MODIFIES SQL DATA SQL SECURITY DEFINER
    COMMENT 'chaos.count_pay: a payment on every run (no idempotency key), each run recorded'
BEGIN
    DECLARE v_rows BIGINT;
    DECLARE v_n BIGINT;
    DECLARE v_attempt INT;
    INSERT INTO payment (customer_id, rental_id, amount, payment_date)
    VALUES (p_customer_id, NULL, p_amount, p_paid_at);
    SET p_payment_id = LAST_INSERT_ID();
    -- Counted first: INSERT ... SELECT from the same AUTO_INCREMENT table fails under
    -- concurrency (1467).
    SELECT COUNT(*) + 1 INTO v_attempt FROM chaos_exec WHERE tag = p_tag;
    INSERT INTO chaos_exec (tag, attempt, payment_id, conn)
    VALUES (p_tag, v_attempt, p_payment_id, CONNECTION_ID());
    SELECT scan_rows INTO v_rows FROM chaos_knob WHERE id = 1;
    SELECT COUNT(*) INTO v_n FROM seq_1_to_1000000000 WHERE seq <= v_rows AND seq % 7 = 4;
END$$

CREATE OR REPLACE PROCEDURE chaos_scan(IN p_n INT, IN p_rows BIGINT)
    READS SQL DATA SQL SECURITY DEFINER
BEGIN
    DECLARE v_rows BIGINT;
    SELECT COALESCE(p_rows, scan_rows) INTO v_rows FROM chaos_knob WHERE id = 1;
    SELECT COUNT(*) AS n FROM seq_1_to_1000000000 WHERE seq <= v_rows AND seq % 7 = p_n;
END$$

DELIMITER ;

CREATE OR REPLACE SQL SECURITY DEFINER VIEW chaos_big AS
    SELECT seq AS id, REPEAT('x', 1000) AS pad FROM seq_1_to_100000;

GRANT EXECUTE ON PROCEDURE chaos_slow_pay  TO ${app_user};
GRANT EXECUTE ON PROCEDURE chaos_count_pay TO ${app_user};
GRANT EXECUTE ON PROCEDURE chaos_scan      TO ${app_user};
GRANT SELECT  ON chaos_big                 TO ${app_user};
