-- The log store: the admin role's domain (templates/admin/logs.toml). Same names, parameters and
-- results as schema/mysql/075_logs.sql, and the conventions of 040/070 (SECURITY DEFINER, pinned
-- search_path, schema-qualified names, INOUT out values). adminLogsBroker appends batches through
-- log_append; `beds call logs recent` reads log_recent. The application role may append and read,
-- never update or delete; retention is the DBA's call. REVOKEs and grants are at the end.

CREATE TABLE IF NOT EXISTS public.log_entry (
    log_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logged_at       timestamp(6) NOT NULL,            -- when the node logged it, UTC
    node            varchar(200) NOT NULL,
    role            varchar(64),
    level           varchar(16) NOT NULL,             -- warning | error | critical | audit
    event           varchar(200) NOT NULL,            -- the log event; 'audit' for audit events
    logger          varchar(200),
    correlation_id  varchar(200),
    caller          varchar(200),                     -- the caller's RabbitMQ user (audit)
    template        varchar(64),
    op              varchar(64),
    line            jsonb NOT NULL,                   -- the whole line, as shipped
    stored_at       timestamp(6) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX IF NOT EXISTS idx_log_entry_node ON public.log_entry (node, log_id);
CREATE INDEX IF NOT EXISTS idx_log_entry_level ON public.log_entry (level, log_id);
CREATE INDEX IF NOT EXISTS idx_log_entry_event ON public.log_entry (event, log_id);
CREATE INDEX IF NOT EXISTS idx_log_entry_correlation ON public.log_entry (correlation_id);

CREATE OR REPLACE VIEW public.log_recent AS
SELECT log_id, logged_at, node, role, level, event, logger, correlation_id, caller, template,
       op, line
  FROM public.log_entry;

-- Append a batch in one statement: p_lines is a JSON array of objects {logged_at, node, role,
-- level, event, logger, correlation_id, caller, template, op, line}. All entries or none.
CREATE OR REPLACE PROCEDURE public.log_append(
    IN    p_lines   jsonb,
    INOUT p_stored  integer)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_lines IS NULL OR jsonb_typeof(p_lines) <> 'array' THEN
        RAISE EXCEPTION 'lines: expected a JSON array of log lines' USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.log_entry (logged_at, node, role, level, event, logger, correlation_id,
                                  caller, template, op, line)
    SELECT j.logged_at, j.node, j.role, j.level, j.event, j.logger, j.correlation_id, j.caller,
           j.template, j.op, COALESCE(j.line, '{}'::jsonb)
      FROM jsonb_to_recordset(p_lines) AS j(
               logged_at timestamp(6), node varchar(200), role varchar(64), level varchar(16),
               event varchar(200), logger varchar(200), correlation_id varchar(200),
               caller varchar(200), template varchar(64), op varchar(64), line jsonb);
    GET DIAGNOSTICS p_stored = ROW_COUNT;
END
$$;
COMMENT ON PROCEDURE public.log_append(jsonb, integer)
    IS 'BEDS logs.append: store a batch of log lines and audit events, OUT how many';

-- A new routine is executable by PUBLIC until this is revoked; tables get no PUBLIC rights.
REVOKE ALL ON public.log_entry FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE public.log_append(jsonb, integer) FROM PUBLIC;

-- templates/admin/logs.toml
GRANT EXECUTE ON PROCEDURE public.log_append(jsonb, integer) TO ${app_user};
GRANT SELECT  ON public.log_recent TO ${app_user};
