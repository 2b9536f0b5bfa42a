-- Test-only objects of the fault-injection suite on PostgreSQL (see ../mysql/010_chaos.sql),
-- applied after schema/postgres/ to the private clusters scenarios start; never shipped.
--  * chaos_count_pay + chaos_exec: a NON-idempotent payment that records every execution that
--    committed (tag, attempt, backend pid), so re-executions show.

CREATE TABLE IF NOT EXISTS public.chaos_exec (
    exec_id     bigserial PRIMARY KEY,
    tag         varchar(64) NOT NULL,
    attempt     integer NOT NULL,
    payment_id  integer NOT NULL,
    conn        integer NOT NULL,
    executed_at timestamp NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS idx_chaos_exec_tag ON public.chaos_exec (tag);

CREATE OR REPLACE PROCEDURE public.chaos_count_pay(
    IN    p_tag         varchar(64),
    IN    p_customer_id integer,
    IN    p_amount      numeric(6,2),
    IN    p_paid_at     timestamp,
    INOUT p_payment_id  integer)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.payment (customer_id, rental_id, amount, payment_date)
    VALUES (p_customer_id, NULL, p_amount, p_paid_at)
    RETURNING payment_id INTO p_payment_id;
    INSERT INTO public.chaos_exec (tag, attempt, payment_id, conn)
    SELECT p_tag, count(*) + 1, p_payment_id, pg_backend_pid()
      FROM public.chaos_exec WHERE tag = p_tag;
END
$$;

REVOKE EXECUTE ON PROCEDURE public.chaos_count_pay(varchar, integer, numeric, timestamp, integer)
    FROM PUBLIC;
REVOKE ALL ON public.chaos_exec FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE public.chaos_count_pay(varchar, integer, numeric, timestamp, integer)
    TO ${app_user};
