"""The schema applier splits mysql-client scripts the way the mysql client does."""

from beds.adapters.mysql.schema import split_statements


def test_delimiter_blocks_quotes_and_comments() -> None:
    script = """
-- a comment; with a semicolon
CREATE TABLE a (x INT); # another; comment
INSERT INTO a VALUES ('semi;colon'), ("it''s;"), (`q;`);
/* block; comment */
DELIMITER $$
CREATE PROCEDURE p()
BEGIN
  SELECT 1; SELECT 'x;y';
END$$
DELIMITER ;
SELECT 2;
"""
    assert split_statements(script) == [
        "CREATE TABLE a (x INT)",
        "INSERT INTO a VALUES ('semi;colon'), (\"it''s;\"), (`q;`)",
        "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1; SELECT 'x;y';\nEND",
        "SELECT 2",
    ]
