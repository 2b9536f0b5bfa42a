-- Least privilege for the application account: EXECUTE on exactly the
-- routines the templates use and SELECT on exactly the views they use.
-- Nothing on base tables. The app_user placeholder is replaced by the applier with the
-- quoted account (for example beds_app at any host), which it creates beforehand.
-- GRANT is idempotent. Keep this file last so that routines recreated by
-- 040/050 get their grants back.

-- templates/film.toml
GRANT EXECUTE ON PROCEDURE film_fetch            TO ${app_user};
GRANT EXECUTE ON PROCEDURE film_in_stock         TO ${app_user};
GRANT EXECUTE ON PROCEDURE store_report          TO ${app_user};
GRANT SELECT  ON film_list                       TO ${app_user};

-- templates/customer.toml
GRANT EXECUTE ON PROCEDURE customer_fetch        TO ${app_user};
GRANT EXECUTE ON PROCEDURE customer_create       TO ${app_user};
GRANT EXECUTE ON PROCEDURE customer_update_email TO ${app_user};
GRANT EXECUTE ON PROCEDURE payment_add           TO ${app_user};
GRANT EXECUTE ON PROCEDURE payment_record        TO ${app_user};
GRANT EXECUTE ON FUNCTION  get_customer_balance  TO ${app_user};
GRANT SELECT  ON customer_list                   TO ${app_user};
