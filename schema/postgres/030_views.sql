-- Views exposed to BEDS callers (SELECT is granted on these, never on tables).
-- A PostgreSQL view reads its tables with the rights of its owner (the DBA), so
-- the application role needs no table privileges. Column names and types match
-- schema/mysql/030_views.sql; "FID" is quoted to keep MariaDB's upper case, so
-- replies carry the same keys on both engines.

CREATE OR REPLACE VIEW public.film_list AS
SELECT
    f.film_id      AS "FID",
    f.title        AS title,
    c.name         AS category,
    f.rental_rate  AS price,
    f.length       AS length,
    f.rating       AS rating,
    f.release_year AS release_year
FROM public.film AS f
JOIN public.category AS c ON c.category_id = f.category_id;

-- No pin_hash here, on purpose.
CREATE OR REPLACE VIEW public.customer_list AS
SELECT
    cu.customer_id AS customer_id,
    cu.first_name  AS first_name,
    cu.last_name   AS last_name,
    cu.email       AS email,
    cu.store_id    AS store_id,
    cu.active      AS active,
    cu.created_at  AS created_at
FROM public.customer AS cu;
