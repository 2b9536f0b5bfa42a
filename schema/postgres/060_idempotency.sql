-- Idempotent writes: the pattern for DBAs (same contract as schema/mysql/060_idempotency.sql).
--
-- The write takes an idempotency key as its FIRST parameter (`idempotency_key = "request_id"` in
-- the template; BEDS fills it from the AMQP message_id when the caller does not pass it, and
-- passes a SHA-256 over op, caller and that value: beds/idempotency.py) and records it in the
-- SAME transaction as the write, with a hash of its params. INSERT ... ON CONFLICT DO NOTHING
-- waits for a concurrent inserter of the same key to commit (or roll back): a repeat returns the
-- stored outcome instead of doing the work twice. The same key with different params raises
-- unique_violation 'idempotency key reused with different params' (CONFLICT).

CREATE TABLE IF NOT EXISTS public.request_log (
    request_id  varchar(64) PRIMARY KEY,
    op          varchar(64) NOT NULL,
    result_id   bigint,
    created_at  timestamp NOT NULL DEFAULT localtimestamp(0),
    params_hash char(64)
);

-- A request_log made before keys carried a params hash (NULL there: not compared).
ALTER TABLE public.request_log ADD COLUMN IF NOT EXISTS params_hash char(64);

CREATE OR REPLACE PROCEDURE public.payment_record(
    IN    p_request_id  varchar(64),
    IN    p_customer_id integer,
    IN    p_amount      numeric(6,2),
    IN    p_paid_at     timestamp,
    INOUT p_payment_id  integer)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_hash   char(64) := encode(sha256(convert_to(
                 json_build_array(p_customer_id, p_amount, p_paid_at)::text, 'UTF8')), 'hex');
    v_stored char(64);
BEGIN
    INSERT INTO public.request_log (request_id, op, params_hash)
    VALUES (p_request_id, 'payment_record', v_hash)
    ON CONFLICT (request_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT result_id, params_hash INTO p_payment_id, v_stored FROM public.request_log
         WHERE request_id = p_request_id;
        IF v_stored <> v_hash THEN
            RAISE EXCEPTION 'idempotency key reused with different params'
                USING ERRCODE = 'unique_violation';
        END IF;
        RETURN;
    END IF;
    IF p_customer_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM public.customer WHERE customer_id = p_customer_id) THEN
        RAISE EXCEPTION 'unknown customer_id';
    END IF;
    INSERT INTO public.payment (customer_id, rental_id, amount, payment_date)
    VALUES (p_customer_id, NULL, p_amount, COALESCE(p_paid_at, localtimestamp(0)))
    RETURNING payment_id INTO p_payment_id;
    UPDATE public.request_log SET result_id = p_payment_id WHERE request_id = p_request_id;
END
$$;
COMMENT ON PROCEDURE public.payment_record(varchar, integer, numeric, timestamp, integer)
    IS 'BEDS customer.pay: record a payment once per request id, OUT its id';
