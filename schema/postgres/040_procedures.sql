-- Stored procedures exposed to BEDS callers (EXECUTE granted in 090_grants.sql).
--
-- The BEDS convention for PostgreSQL procedures (a procedure cannot return a
-- result set directly, unlike a MariaDB one):
--   1. the IN parameters of the template's `params`, in order;
--   2. one INOUT parameter per name in the template's `out`, in order;
--   3. one INOUT refcursor parameter per result set, in order.
-- BEDS calls CALL p($1, ..., NULL, ...) inside a transaction, reads the OUT
-- values from the returned row, then FETCH ALL from each cursor the procedure
-- opened. Leave cursors unnamed (OPEN c FOR ...): PostgreSQL gives each a
-- unique portal name.
--
-- Every routine is SECURITY DEFINER (it reads tables the application role has
-- no privileges on) with a pinned search_path, so a caller cannot shadow
-- pg_catalog objects with its own; hence every table name is schema-qualified.
-- Same names, parameter order and results as schema/mysql/040_procedures.sql.

-- One-row primary-key fetch (zero rows when the film does not exist).
CREATE OR REPLACE PROCEDURE public.film_fetch(
    IN    p_film_id integer,
    INOUT film      refcursor)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    OPEN film FOR
        SELECT "FID", title, category, price, length, rating, release_year
          FROM public.film_list
         WHERE "FID" = p_film_id;
END
$$;
COMMENT ON PROCEDURE public.film_fetch(integer, refcursor)
    IS 'BEDS film.fetch: the film_list row for one film';

-- Copies of a film at a store that are not in an unreturned rental: result
-- set of inventory_id (ascending) and their count in p_film_count.
CREATE OR REPLACE PROCEDURE public.film_in_stock(
    IN    p_film_id    integer,
    IN    p_store_id   integer,
    INOUT p_film_count integer,
    INOUT copies       refcursor)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT count(*)
      INTO p_film_count
      FROM public.inventory AS i
     WHERE i.film_id = p_film_id
       AND i.store_id = p_store_id
       AND NOT EXISTS (SELECT 1
                         FROM public.rental AS r
                        WHERE r.inventory_id = i.inventory_id
                          AND r.return_date IS NULL);

    OPEN copies FOR
        SELECT i.inventory_id
          FROM public.inventory AS i
         WHERE i.film_id = p_film_id
           AND i.store_id = p_store_id
           AND NOT EXISTS (SELECT 1
                             FROM public.rental AS r
                            WHERE r.inventory_id = i.inventory_id
                              AND r.return_date IS NULL)
         ORDER BY i.inventory_id;
END
$$;
COMMENT ON PROCEDURE public.film_in_stock(integer, integer, integer, refcursor)
    IS 'BEDS film.in_stock: inventory ids in stock, OUT count';

-- Two result sets: (1) copies per category held by the store (only
-- categories with at least one copy, ordered by category name),
-- (2) one row: store_id, city, number of customers (zero rows if unknown store).
CREATE OR REPLACE PROCEDURE public.store_report(
    IN    p_store_id integer,
    INOUT categories refcursor,
    INOUT summary    refcursor)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    OPEN categories FOR
        SELECT c.name   AS category,
               count(*) AS copies
          FROM public.inventory AS i
          JOIN public.film      AS f ON f.film_id = i.film_id
          JOIN public.category  AS c ON c.category_id = f.category_id
         WHERE i.store_id = p_store_id
         GROUP BY c.category_id, c.name
         ORDER BY c.name;

    OPEN summary FOR
        SELECT s.store_id,
               s.city,
               (SELECT count(*) FROM public.customer AS cu
                 WHERE cu.store_id = s.store_id) AS customers
          FROM public.store AS s
         WHERE s.store_id = p_store_id;
END
$$;
COMMENT ON PROCEDURE public.store_report(integer, refcursor, refcursor)
    IS 'BEDS film.store_report: copies per category, store summary';

-- One row from customer_list (never pin_hash), zero rows when absent.
CREATE OR REPLACE PROCEDURE public.customer_fetch(
    IN    p_customer_id integer,
    INOUT customer      refcursor)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    OPEN customer FOR
        SELECT customer_id, first_name, last_name, email, store_id, active, created_at
          FROM public.customer_list
         WHERE customer_id = p_customer_id;
END
$$;
COMMENT ON PROCEDURE public.customer_fetch(integer, refcursor)
    IS 'BEDS customer.fetch: the customer_list row for one customer';

-- Creates a customer. Unknown store -> RAISE 'unknown store_id' (SQLSTATE
-- P0001). Duplicate email -> the normal unique_violation 23505 (not caught).
-- The new id is returned both as INOUT p_customer_id and as a one-row result
-- set (customer_id).
CREATE OR REPLACE PROCEDURE public.customer_create(
    IN    p_store_id    integer,
    IN    p_first_name  varchar(45),
    IN    p_last_name   varchar(45),
    IN    p_email       varchar(100),
    IN    p_pin         varchar(64),
    INOUT p_customer_id integer,
    INOUT created       refcursor)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_store_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM public.store WHERE store_id = p_store_id) THEN
        RAISE EXCEPTION 'unknown store_id';
    END IF;

    INSERT INTO public.customer
        (store_id, first_name, last_name, email, pin_hash, active, created_at)
    VALUES
        (p_store_id, p_first_name, p_last_name, p_email,
         encode(sha256(convert_to(p_pin, 'UTF8')), 'hex'),   -- NULL pin -> NULL hash
         true, localtimestamp(0))
    RETURNING customer_id INTO p_customer_id;

    OPEN created FOR SELECT p_customer_id AS customer_id;
END
$$;
COMMENT ON PROCEDURE public.customer_create(integer, varchar, varchar, varchar, varchar,
                                            integer, refcursor)
    IS 'BEDS customer.create: insert a customer, OUT/result new id';

-- INOUT p_updated: 1 when the email changed, 0 when the customer does not
-- exist or already had exactly that email (MariaDB's affected-rows count).
-- Duplicate email -> unique_violation 23505.
CREATE OR REPLACE PROCEDURE public.customer_update_email(
    IN    p_customer_id integer,
    IN    p_email       varchar(100),
    INOUT p_updated     integer)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.customer
       SET email = p_email
     WHERE customer_id = p_customer_id
       AND email IS DISTINCT FROM p_email;
    GET DIAGNOSTICS p_updated = ROW_COUNT;
END
$$;
COMMENT ON PROCEDURE public.customer_update_email(integer, varchar, integer)
    IS 'BEDS customer.update_email: OUT number of rows updated';

-- Records a payment (not tied to a rental). Unknown customer -> RAISE
-- 'unknown customer_id'. A NULL p_paid_at means now.
CREATE OR REPLACE PROCEDURE public.payment_add(
    IN    p_customer_id integer,
    IN    p_amount      numeric(6,2),
    IN    p_paid_at     timestamp,
    INOUT p_payment_id  integer)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_customer_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM public.customer WHERE customer_id = p_customer_id) THEN
        RAISE EXCEPTION 'unknown customer_id';
    END IF;

    INSERT INTO public.payment (customer_id, rental_id, amount, payment_date)
    VALUES (p_customer_id, NULL, p_amount, COALESCE(p_paid_at, localtimestamp(0)))
    RETURNING payment_id INTO p_payment_id;
END
$$;
COMMENT ON PROCEDURE public.payment_add(integer, numeric, timestamp, integer)
    IS 'BEDS customer.add_payment: insert a payment, OUT new id';
