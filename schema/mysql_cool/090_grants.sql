-- Least privilege in the warehouse too: EXECUTE on the routines and SELECT on the view that
-- templates/segundo/payment_archive.toml uses, nothing on the table. Last, so that routines
-- recreated by 020 get their grants back.
GRANT EXECUTE ON PROCEDURE payment_archive_load  TO ${app_user};
GRANT EXECUTE ON PROCEDURE payment_archive_fetch TO ${app_user};
GRANT SELECT  ON payment_archive_list            TO ${app_user};
