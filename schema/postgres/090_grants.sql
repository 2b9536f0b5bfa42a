-- Least privilege for the application role: EXECUTE on exactly the routines
-- the templates use and SELECT on exactly the views they use. Nothing on base
-- tables. The app_user placeholder is replaced by the applier with the quoted
-- role name from the datasource dsn, which it creates beforehand. Keep this
-- file last so that routines recreated by 040/050 keep their grants right.

-- A new routine is executable by PUBLIC until this is revoked.
REVOKE EXECUTE ON PROCEDURE public.film_fetch(integer, refcursor) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE public.film_in_stock(integer, integer, integer, refcursor) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE public.store_report(integer, refcursor, refcursor) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE public.customer_fetch(integer, refcursor) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE public.customer_create(integer, varchar, varchar, varchar, varchar,
                                                   integer, refcursor) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE public.customer_update_email(integer, varchar, integer) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE public.payment_add(integer, numeric, timestamp, integer) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE public.payment_record(varchar, integer, numeric, timestamp, integer)
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION  public.get_customer_balance(integer, timestamp) FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;

-- The application role may look names up in the schema, never create in it.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ${app_user};

-- templates/film.toml
GRANT EXECUTE ON PROCEDURE public.film_fetch(integer, refcursor) TO ${app_user};
GRANT EXECUTE ON PROCEDURE public.film_in_stock(integer, integer, integer, refcursor) TO ${app_user};
GRANT EXECUTE ON PROCEDURE public.store_report(integer, refcursor, refcursor) TO ${app_user};
GRANT SELECT  ON public.film_list TO ${app_user};

-- templates/customer.toml
GRANT EXECUTE ON PROCEDURE public.customer_fetch(integer, refcursor) TO ${app_user};
GRANT EXECUTE ON PROCEDURE public.customer_create(integer, varchar, varchar, varchar, varchar,
                                                  integer, refcursor) TO ${app_user};
GRANT EXECUTE ON PROCEDURE public.customer_update_email(integer, varchar, integer) TO ${app_user};
GRANT EXECUTE ON PROCEDURE public.payment_add(integer, numeric, timestamp, integer) TO ${app_user};
GRANT EXECUTE ON PROCEDURE public.payment_record(varchar, integer, numeric, timestamp, integer)
    TO ${app_user};
GRANT EXECUTE ON FUNCTION  public.get_customer_balance(integer, timestamp) TO ${app_user};
GRANT SELECT  ON public.customer_list TO ${app_user};
