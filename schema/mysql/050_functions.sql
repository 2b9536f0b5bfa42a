-- Stored functions exposed to BEDS callers (EXECUTE granted in 090_grants.sql).

DELIMITER $$

-- Sum of the payments of the customer made up to and including p_effective_date,
-- 0.00 when there are none (also for an unknown customer or a NULL date).
CREATE OR REPLACE FUNCTION get_customer_balance(
    p_customer_id    INT,
    p_effective_date DATETIME)
    RETURNS DECIMAL(8,2)
    NOT DETERMINISTIC
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS customer.balance: payments up to a date'
BEGIN
    DECLARE v_total DECIMAL(8,2) DEFAULT 0.00;

    SELECT COALESCE(SUM(p.amount), 0.00)
      INTO v_total
      FROM payment AS p
     WHERE p.customer_id = p_customer_id
       AND p.payment_date <= p_effective_date;

    RETURN v_total;
END$$

DELIMITER ;
