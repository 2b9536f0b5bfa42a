-- Views exposed to BEDS callers (SELECT is granted on these, never on tables).
-- SQL SECURITY DEFINER: the view reads the base tables with the rights of
-- the definer, so the application account needs no table privileges.

CREATE OR REPLACE
    ALGORITHM = MERGE
    SQL SECURITY DEFINER
VIEW film_list AS
SELECT
    f.film_id      AS FID,
    f.title        AS title,
    c.name         AS category,
    f.rental_rate  AS price,
    f.length       AS length,
    f.rating       AS rating,
    f.release_year AS release_year
FROM film AS f
JOIN category AS c ON c.category_id = f.category_id;

-- No pin_hash here, on purpose.
CREATE OR REPLACE
    ALGORITHM = MERGE
    SQL SECURITY DEFINER
VIEW customer_list AS
SELECT
    cu.customer_id AS customer_id,
    cu.first_name  AS first_name,
    cu.last_name   AS last_name,
    cu.email       AS email,
    cu.store_id    AS store_id,
    cu.active      AS active,
    cu.created_at  AS created_at
FROM customer AS cu;
