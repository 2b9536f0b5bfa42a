-- Users and sessions: the tercero role's domain (templates/tercero/users.toml, sessions.toml).
-- Owned by the DBA, same conventions as 010-060: tables nobody but these routines touches, one
-- read view, SQL SECURITY DEFINER procedures, and the application account's grants at the end.
--
-- Why the grants are here and not in 090_grants.sql: MariaDB drops a routine's privileges when
-- CREATE OR REPLACE recreates it, so a grant must run after the routine's own file. 090 does that
-- for the appServer templates; this file recreates its routines and then grants them itself.
--
-- Sessions: the database makes the token (RANDOM_BYTES, a CSPRNG) and stores only its SHA-256,
-- so a copy of the table opens no session. session_open is the one routine that returns a token;
-- every other one takes it and never returns it. Times are UTC. No passwords live here.

CREATE TABLE IF NOT EXISTS users (
    user_id       INT UNSIGNED NOT NULL AUTO_INCREMENT,
    email         VARCHAR(254) NOT NULL,
    display_name  VARCHAR(100) NOT NULL,
    status        ENUM('active', 'suspended', 'closed') NOT NULL DEFAULT 'active',
    created_at    DATETIME NOT NULL DEFAULT UTC_TIMESTAMP(),
    PRIMARY KEY (user_id),
    UNIQUE KEY uq_users_email (email),          -- case-insensitive: the collation is *_ci
    KEY idx_users_status (status, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS user_session (
    token_hash  CHAR(64) CHARACTER SET ascii NOT NULL,
    user_id     INT UNSIGNED NOT NULL,
    created_at  DATETIME NOT NULL,
    expires_at  DATETIME NOT NULL,
    PRIMARY KEY (token_hash),
    KEY idx_user_session_user (user_id, expires_at),
    CONSTRAINT fk_user_session_user FOREIGN KEY (user_id)
        REFERENCES users (user_id) ON DELETE CASCADE
) ENGINE=InnoDB;

CREATE OR REPLACE SQL SECURITY DEFINER VIEW user_list AS
SELECT user_id, email, display_name, status, created_at
  FROM users;

DELIMITER $$

-- Create a user at most once per request id (the 060_idempotency.sql pattern): a repeat returns
-- the first user's id; the same key with other params is CONFLICT. A taken email is error 1062
-- (CONFLICT) and leaves nothing behind.
CREATE OR REPLACE PROCEDURE user_create(
    IN  p_request_id    VARCHAR(64) CHARACTER SET ascii,
    IN  p_email         VARCHAR(254) CHARACTER SET utf8mb4,
    IN  p_display_name  VARCHAR(100) CHARACTER SET utf8mb4,
    OUT p_user_id       INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS users.create: create a user once per scoped request id, OUT its id'
BEGIN
    DECLARE v_repeat BOOL DEFAULT FALSE;
    DECLARE v_hash CHAR(64) CHARACTER SET ascii
        DEFAULT SHA2(JSON_ARRAY(p_email, p_display_name), 256);
    DECLARE v_stored CHAR(64) CHARACTER SET ascii;
    BEGIN
        -- Scoped to the key insert: a duplicate email below must stay an error.
        DECLARE CONTINUE HANDLER FOR 1062 SET v_repeat = TRUE;
        INSERT INTO request_log (request_id, op, params_hash)
        VALUES (p_request_id, 'user_create', v_hash);
    END;
    IF v_repeat THEN
        -- A locking read: the latest committed row, not this transaction's snapshot
        -- (060_idempotency.sql says why).
        SELECT result_id, params_hash INTO p_user_id, v_stored
          FROM request_log WHERE request_id = p_request_id LOCK IN SHARE MODE;
        IF v_stored <> v_hash THEN
            SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062,
                MESSAGE_TEXT = 'idempotency key reused with different params';
        END IF;
    ELSE
        INSERT INTO users (email, display_name) VALUES (p_email, p_display_name);
        SET p_user_id = LAST_INSERT_ID();
        UPDATE request_log SET result_id = p_user_id WHERE request_id = p_request_id;
    END IF;
END$$

CREATE OR REPLACE PROCEDURE user_fetch(IN p_user_id INT)
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS users.fetch: one user by id (no rows when absent)'
BEGIN
    SELECT user_id, email, display_name, status, created_at
      FROM user_list
     WHERE user_id = p_user_id;
END$$

CREATE OR REPLACE PROCEDURE user_fetch_by_email(IN p_email VARCHAR(254) CHARACTER SET utf8mb4)
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS users.by_email: one user by email, any case (no rows when absent)'
BEGIN
    SELECT user_id, email, display_name, status, created_at
      FROM user_list
     WHERE email = p_email;
END$$

-- A user who is no longer active loses every session at once.
CREATE OR REPLACE PROCEDURE user_set_status(
    IN  p_user_id  INT,
    IN  p_status   VARCHAR(16) CHARACTER SET utf8mb4,
    OUT p_updated  INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS users.set_status: OUT 1, or 0 when no such user or unchanged'
BEGIN
    IF p_status NOT IN ('active', 'suspended', 'closed') THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'unknown status';
    END IF;
    UPDATE users SET status = p_status WHERE user_id = p_user_id;
    SET p_updated = ROW_COUNT();
    IF p_status <> 'active' THEN
        DELETE FROM user_session WHERE user_id = p_user_id;
    END IF;
END$$

-- A new session for an active user, valid for p_ttl_seconds; OUT its token (64 hex digits).
-- Expired sessions of that user are swept on the way.
CREATE OR REPLACE PROCEDURE session_open(
    IN  p_user_id      INT,
    IN  p_ttl_seconds  INT,
    OUT p_token        CHAR(64) CHARACTER SET ascii)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS sessions.open: a new session token for an active user'
BEGIN
    DECLARE v_now DATETIME DEFAULT UTC_TIMESTAMP();
    -- A user suspended meanwhile keeps a dead session at worst: session_fetch checks status.
    IF NOT EXISTS (SELECT 1 FROM users WHERE user_id = p_user_id AND status = 'active') THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'unknown or inactive user_id';
    END IF;
    IF p_ttl_seconds IS NULL OR p_ttl_seconds < 1 THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'ttl_seconds must be positive';
    END IF;
    DELETE FROM user_session WHERE user_id = p_user_id AND expires_at <= v_now;
    SET p_token = LOWER(HEX(RANDOM_BYTES(32)));
    INSERT INTO user_session (token_hash, user_id, created_at, expires_at)
    VALUES (SHA2(p_token, 256), p_user_id, v_now, v_now + INTERVAL p_ttl_seconds SECOND);
END$$

-- The session a token opens: user_id, created_at, expires_at; no rows when the token is
-- unknown, expired, or its user is no longer active.
CREATE OR REPLACE PROCEDURE session_fetch(IN p_token CHAR(64) CHARACTER SET ascii)
    READS SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS sessions.fetch: the valid session of a token (never the token)'
BEGIN
    SELECT s.user_id, s.created_at, s.expires_at
      FROM user_session AS s
      JOIN users AS u ON u.user_id = s.user_id
     WHERE s.token_hash = SHA2(p_token, 256)
       AND s.expires_at > UTC_TIMESTAMP()
       AND u.status = 'active';
END$$

-- Extend a valid session to now + p_ttl_seconds; OUT 1, or 0 when it is not valid.
CREATE OR REPLACE PROCEDURE session_touch(
    IN  p_token        CHAR(64) CHARACTER SET ascii,
    IN  p_ttl_seconds  INT,
    OUT p_updated      INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS sessions.touch: extend a valid session'
BEGIN
    IF p_ttl_seconds IS NULL OR p_ttl_seconds < 1 THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'ttl_seconds must be positive';
    END IF;
    UPDATE user_session
       SET expires_at = UTC_TIMESTAMP() + INTERVAL p_ttl_seconds SECOND
     WHERE token_hash = SHA2(p_token, 256)
       AND expires_at > UTC_TIMESTAMP();
    SET p_updated = ROW_COUNT();
END$$

CREATE OR REPLACE PROCEDURE session_close(
    IN  p_token   CHAR(64) CHARACTER SET ascii,
    OUT p_closed  INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS sessions.close: end one session; OUT 1, or 0 when unknown'
BEGIN
    DELETE FROM user_session WHERE token_hash = SHA2(p_token, 256);
    SET p_closed = ROW_COUNT();
END$$

CREATE OR REPLACE PROCEDURE session_close_all(
    IN  p_user_id  INT,
    OUT p_closed   INT)
    MODIFIES SQL DATA
    SQL SECURITY DEFINER
    COMMENT 'BEDS sessions.close_all: end every session of a user; OUT how many'
BEGIN
    DELETE FROM user_session WHERE user_id = p_user_id;
    SET p_closed = ROW_COUNT();
END$$

DELIMITER ;

-- templates/tercero/users.toml
GRANT EXECUTE ON PROCEDURE user_create          TO ${app_user};
GRANT EXECUTE ON PROCEDURE user_fetch           TO ${app_user};
GRANT EXECUTE ON PROCEDURE user_fetch_by_email  TO ${app_user};
GRANT EXECUTE ON PROCEDURE user_set_status      TO ${app_user};
GRANT SELECT  ON user_list                      TO ${app_user};

-- templates/tercero/sessions.toml
GRANT EXECUTE ON PROCEDURE session_open         TO ${app_user};
GRANT EXECUTE ON PROCEDURE session_fetch        TO ${app_user};
GRANT EXECUTE ON PROCEDURE session_touch        TO ${app_user};
GRANT EXECUTE ON PROCEDURE session_close        TO ${app_user};
GRANT EXECUTE ON PROCEDURE session_close_all    TO ${app_user};
