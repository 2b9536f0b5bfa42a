-- The log store: the admin role's domain (templates/admin/logs.toml). Every node ships its
-- warning-and-above log lines and one audit event per write call; the admin's adminLogsBroker
-- appends them here in batches through log_append, and `beds call logs recent` reads them back
-- through log_recent. Owned by the DBA like everything else: the application account may append
-- and read, never update or delete. Retention (e.g. a nightly DELETE by age) is the DBA's call.
--
-- Grants are at the end of this file, not in 090_grants.sql: MariaDB drops a routine's
-- privileges when CREATE OR REPLACE recreates it, so the grant must follow the routine.

CREATE TABLE IF NOT EXISTS log_entry (
    log_id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    logged_at       DATETIME(6) NOT NULL,             -- when the node logged it, UTC
    node            VARCHAR(200) NOT NULL,
    role            VARCHAR(64) NULL,
    level           VARCHAR(16) NOT NULL,             -- warning | error | critical | audit
    event           VARCHAR(200) NOT NULL,            -- the log event; "audit" for audit events
    logger          VARCHAR(200) NULL,
    correlation_id  VARCHAR(200) NULL,
    caller          VARCHAR(200) NULL,                -- the caller's RabbitMQ user (audit)
    template        VARCHAR(64) NULL,
    op              VARCHAR(64) NULL,
    line            LONGTEXT NOT NULL CHECK (JSON_VALID(line)),   -- the whole line, as shipped
    stored_at       DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    PRIMARY KEY (log_id),
    KEY idx_log_entry_node (node, log_id),
    KEY idx_log_entry_level (level, log_id),
    KEY idx_log_entry_event (event, log_id),
    KEY idx_log_entry_correlation (correlation_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE OR REPLACE SQL SECURITY DEFINER VIEW log_recent AS
SELECT log_id, logged_at, node, role, level, event, logger, correlation_id, caller, template,
       op, line
  FROM log_entry;

DELIMITER $$

-- Append a batch in one statement (one transaction): p_lines is a JSON array of objects
-- {logged_at, node, role, level, event, logger, correlation_id, caller, template, op, line};
-- logged_at is 'YYYY-MM-DD HH:MM:SS.ffffff' UTC, `line` a JSON object. All entries or none.
-- OUT how many were stored.
CREATE OR REPLACE PROCEDURE log_append(
    IN  p_lines    LONGTEXT CHARACTER SET utf8mb4,
    OUT p_stored   INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS logs.append: store a batch of log lines and audit events, OUT how many'
BEGIN
    IF p_lines IS NULL OR NOT JSON_VALID(p_lines) OR JSON_TYPE(p_lines) <> 'ARRAY' THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lines: expected a JSON array of log lines';
    END IF;
    INSERT INTO log_entry (logged_at, node, role, level, event, logger, correlation_id, caller,
                           template, op, line)
    SELECT j.logged_at, j.node, j.role, j.level, j.event, j.logger, j.correlation_id, j.caller,
           j.template, j.op, COALESCE(j.line, '{}')
      FROM JSON_TABLE(p_lines, '$[*]' COLUMNS (
               logged_at       DATETIME(6)  PATH '$.logged_at',
               node            VARCHAR(200) PATH '$.node',
               role            VARCHAR(64)  PATH '$.role',
               level           VARCHAR(16)  PATH '$.level',
               event           VARCHAR(200) PATH '$.event',
               logger          VARCHAR(200) PATH '$.logger',
               correlation_id  VARCHAR(200) PATH '$.correlation_id',
               caller          VARCHAR(200) PATH '$.caller',
               template        VARCHAR(64)  PATH '$.template',
               op              VARCHAR(64)  PATH '$.op',
               line            JSON         PATH '$.line')) AS j;
    SET p_stored = ROW_COUNT();
END$$

DELIMITER ;

-- templates/admin/logs.toml
GRANT EXECUTE ON PROCEDURE log_append  TO ${app_user};
GRANT SELECT  ON log_recent            TO ${app_user};
