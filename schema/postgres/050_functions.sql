-- Stored functions exposed to BEDS callers (EXECUTE granted in 090_grants.sql).
-- SECURITY DEFINER with a pinned search_path, like the procedures.

-- Sum of the payments of the customer made up to and including p_effective_date,
-- 0.00 when there are none (also for an unknown customer or a NULL date).
-- PostgreSQL ignores the scale of a declared return type: the cast keeps it.
CREATE OR REPLACE FUNCTION public.get_customer_balance(
    p_customer_id    integer,
    p_effective_date timestamp)
    RETURNS numeric
    LANGUAGE sql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(sum(p.amount), 0.00)::numeric(8,2)
      FROM public.payment AS p
     WHERE p.customer_id = p_customer_id
       AND p.payment_date <= p_effective_date;
$$;
COMMENT ON FUNCTION public.get_customer_balance(integer, timestamp)
    IS 'BEDS customer.balance: payments up to a date';
