-- Warehouse (segundo), HOT side on PostgreSQL: the same two routines as
-- schema/mysql/080_warehouse.sql, for templates/segundo/payments.toml when the live datasource
-- is PostgreSQL (config/postgres.toml). The mover runs, per batch:
--   payment_wh_extract -> payment_archive_load (COOL) -> payment_wh_purge(the keys COOL holds)
-- so a row is deleted here only after the warehouse confirmed it. Ages are compared with this
-- server's clock (localtimestamp, as payment_date is stored), never the node's.
-- A payment is never updated after it is recorded, which is what makes purge-by-key safe.

CREATE INDEX IF NOT EXISTS idx_payment_date ON public.payment (payment_date);

-- Up to p_batch_size payments older than p_age_seconds, after p_after_key (NULL: from the
-- start), in key order: the mover resumes after the last key of each batch.
CREATE OR REPLACE PROCEDURE public.payment_wh_extract(
    IN    p_age_seconds integer,
    IN    p_after_key   integer,
    IN    p_batch_size  integer,
    INOUT payments      refcursor)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    OPEN payments FOR
        SELECT payment_id, customer_id, rental_id, amount, payment_date, last_update
          FROM public.payment
         WHERE payment_date < localtimestamp - make_interval(secs => p_age_seconds)
           AND (p_after_key IS NULL OR payment_id > p_after_key)
         ORDER BY payment_id
         LIMIT p_batch_size;
END
$$;
COMMENT ON PROCEDURE public.payment_wh_extract(integer, integer, integer, refcursor)
    IS 'BEDS payments.wh_extract: aged payments in key order (warehouse mover only)';

-- Deletes the payments whose ids are in p_keys (a JSON array the warehouse confirmed) and that
-- are still older than p_age_seconds; p_purged is how many went. Running it twice is harmless.
CREATE OR REPLACE PROCEDURE public.payment_wh_purge(
    IN    p_keys        text,
    IN    p_age_seconds integer,
    INOUT p_purged      integer)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM public.payment AS p
     USING jsonb_array_elements_text(p_keys::jsonb) AS k(payment_id)
     WHERE p.payment_id = k.payment_id::integer
       AND p.payment_date < localtimestamp - make_interval(secs => p_age_seconds);
    GET DIAGNOSTICS p_purged = ROW_COUNT;
END
$$;
COMMENT ON PROCEDURE public.payment_wh_purge(text, integer, integer)
    IS 'BEDS payments.wh_purge: delete warehoused payments by id (warehouse mover only)';

REVOKE EXECUTE ON PROCEDURE public.payment_wh_extract(integer, integer, integer, refcursor)
    FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE public.payment_wh_purge(text, integer, integer) FROM PUBLIC;

-- templates/segundo/payments.toml
GRANT EXECUTE ON PROCEDURE public.payment_wh_extract(integer, integer, integer, refcursor)
    TO ${app_user};
GRANT EXECUTE ON PROCEDURE public.payment_wh_purge(text, integer, integer) TO ${app_user};
