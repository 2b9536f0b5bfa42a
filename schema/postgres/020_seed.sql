-- Seed data for the example film-rental store: the same rows and values as
-- schema/mysql/020_seed.sql. Idempotent: explicit primary keys with ON CONFLICT
-- DO NOTHING, so re-applying never duplicates rows (and never restores rows a
-- test has modified). All dates are fixed so that replies are deterministic.

INSERT INTO public.category (category_id, name, last_update) VALUES
    (1, 'Action',      '2024-01-01 00:00:00'),
    (2, 'Comedy',      '2024-01-01 00:00:00'),
    (3, 'Drama',       '2024-01-01 00:00:00'),
    (4, 'Horror',      '2024-01-01 00:00:00'),
    (5, 'Family',      '2024-01-01 00:00:00'),
    (6, 'Documentary', '2024-01-01 00:00:00')
ON CONFLICT DO NOTHING;

-- 30 films, 13 of them in category Action (ids 1,2,3,5,7,9,11,13,15,17,19,21,23) so paging
-- with limit 10 has a second page. Film 13 has NULL description and length.
-- Films 12, 28, 29 and 30 have no inventory at all. Film 30 has a non-ASCII title.
INSERT INTO public.film
    (film_id, title, description, category_id, release_year, rental_rate, length, rating, last_update)
VALUES
    ( 1, 'Academy Dinosaur', 'An epic drama of a feminist and a mad scientist who must battle a teacher in the Canadian Rockies', 1, 2006, 0.99,   86, 'PG',    '2024-01-01 00:00:00'),
    ( 2, 'Ace Goldfinger', 'An astounding epistle of a database administrator and an explorer who must find a car in ancient China', 1, 2006, 4.99,   48, 'G',     '2024-01-01 00:00:00'),
    ( 3, 'Armageddon Lost', 'A fast-paced tale of a boat and a teacher who must succumb a composer in an abandoned mine shaft', 1, 2007, 0.99,   99, 'PG-13', '2024-01-01 00:00:00'),
    ( 4, 'Airplane Sierra', 'A touching saga of a hunter and a butler who must discover a butler in a jet boat', 2, 2006, 4.99,   62, 'PG-13', '2024-01-01 00:00:00'),
    ( 5, 'Bandit Runner', 'A thrilling chase of a courier and a forger across a sleeping harbour town', 1, 2008, 2.99,  112, 'R',     '2024-01-01 00:00:00'),
    ( 6, 'Beach Heartbreakers', 'A fateful display of a womanizer and a mad scientist who must outgun an A-bomb in the Sahara desert', 3, 2006, 2.99,  122, 'G',     '2024-01-01 00:00:00'),
    ( 7, 'Blade Polish', 'A thoughtful character study of a frisbee and a pastry chef who must fight a dentist in the first manned space station', 1, 2009, 0.99,  114, 'PG-13', '2024-01-01 00:00:00'),
    ( 8, 'Caper Motions', 'A fateful saga of a moose and a car who must pursue a woman in a u-boat', 2, 2010, 0.99,  176, 'G',     '2024-01-01 00:00:00'),
    ( 9, 'Clockwork Paradise', 'An insightful documentary of a technical writer and a feminist who must challenge a cat in a baloon', 1, 2010, 0.99,  143, 'PG-13', '2024-01-01 00:00:00'),
    (10, 'Coma Head', 'A awe-inspiring drama of a boy and a frisbee who must escape a pastry chef in California', 4, 2011, 4.99,  109, 'NC-17', '2024-01-01 00:00:00'),
    (11, 'Crusade Honey', 'A fast-paced reflection of a explorer and a butler who must battle a madman in an abandoned amusement park', 1, 2011, 2.99,  112, 'R',     '2024-01-01 00:00:00'),
    (12, 'Dancing Fever', 'A stunning story of an explorer and a forensic psychologist who must face a crocodile in a shark tank', 5, 2012, 0.99,  144, 'G',     '2024-01-01 00:00:00'),
    (13, 'Desert Lightning', NULL, 1, 2012, 4.99, NULL, 'PG-13', '2024-01-01 00:00:00'),
    (14, 'Doctor Grail', 'An insightful drama of a womanizer and a waitress who must reach a forensic psychologist in the outback', 2, 2013, 2.99,   57, 'G',     '2024-01-01 00:00:00'),
    (15, 'Eagles Panky', 'A thoughtful story of a car and a boy who must find a A-bomb in the Sahara desert', 1, 2013, 4.99,  140, 'NC-17', '2024-01-01 00:00:00'),
    (16, 'Early Home', 'An amazing panorama of a mad scientist and a husband who must meet a woman in the outback', 3, 2014, 2.99,   96, 'R',     '2024-01-01 00:00:00'),
    (17, 'Fireball Philadelphia', 'An amazing yarn of a dentist and an A-bomb who must battle a robot in an abandoned amusement park', 1, 2014, 0.99,  148, 'PG',    '2024-01-01 00:00:00'),
    (18, 'Frankenstein Stranger', 'An insightful character study of a feminist and a pioneer who must pursue a pastry chef in Nigeria', 4, 2015, 0.99,  159, 'NC-17', '2024-01-01 00:00:00'),
    (19, 'Gleaming Jawbreaker', 'An amazing display of a composer and a forensic psychologist who must discover a car in the Canadian Rockies', 1, 2015, 2.99,   89, 'NC-17', '2024-01-01 00:00:00'),
    (20, 'Grease Youth', 'An emotional panorama of a secret agent and a waitress who must escape a composer in Soviet Georgia', 5, 2016, 0.99,  135, 'G',     '2024-01-01 00:00:00'),
    (21, 'Hanover Galaxy', 'A stunning reflection of a girl and a secret agent who must succumb a boy in a MySQL convention', 1, 2016, 4.99,   47, 'NC-17', '2024-01-01 00:00:00'),
    (22, 'Hurricane Affair', 'A lacklusture epistle of a database administrator and a woman who must meet a hunter in an abandoned mine shaft', 2, 2017, 2.99,   49, 'PG',    '2024-01-01 00:00:00'),
    (23, 'Inferno Falcon', 'A relentless pursuit of a falcon tamer and a firefighter through a burning refinery', 1, 2018, 4.99,   97, 'R',     '2024-01-01 00:00:00'),
    (24, 'Lady Stage', 'A beautiful character study of a woman and a man who must pursue a composer in the first manned space station', 3, 2018, 4.99,   67, 'PG',    '2024-01-01 00:00:00'),
    (25, 'Midnight Westward', 'A taut tale of a squirrel and a dentist who must find a husband in a jet boat', 6, 2019, 0.99,   86, 'G',     '2024-01-01 00:00:00'),
    (26, 'Rock Instinct', 'An astounding character study of a robot and a moose who must overcome an astronaut in Ancient India', 4, 2019, 0.99,  102, 'G',     '2024-01-01 00:00:00'),
    (27, 'Sleuth Orient', 'A fateful character study of a husband and a dog who must find a feminist in Ancient India', 5, 2020, 0.99,   87, 'G',     '2024-01-01 00:00:00'),
    (28, 'Trouble Date', 'A lacklusture panorama of a forensic psychologist and a woman who must kill a explorer in Ancient Japan', 2, 2020, 2.99,   61, 'PG',    '2024-01-01 00:00:00'),
    (29, 'Wardrobe Phantom', 'An action-packed display of a mad cow and an astronaut who must kill a car in Ancient India', 6, 2021, 2.99,  178, 'G',     '2024-01-01 00:00:00'),
    (30, 'Café Lumière', 'A quiet story of a projectionist and a café owner in Lyon – naïve, bittersweet, très français', 3, 2022, 4.99,  103, 'PG',    '2024-01-01 00:00:00')
ON CONFLICT DO NOTHING;

INSERT INTO public.store (store_id, city, last_update) VALUES
    (1, 'Lethbridge', '2024-01-01 00:00:00'),
    (2, 'Woodridge',  '2024-01-01 00:00:00')
ON CONFLICT DO NOTHING;

-- Film 1: exactly 3 copies in store 1 (inventory 1, 2, 3) and 1 in store 2 (4).
INSERT INTO public.inventory (inventory_id, film_id, store_id, last_update) VALUES
    ( 1,  1, 1, '2024-01-01 00:00:00'),
    ( 2,  1, 1, '2024-01-01 00:00:00'),
    ( 3,  1, 1, '2024-01-01 00:00:00'),
    ( 4,  1, 2, '2024-01-01 00:00:00'),
    ( 5,  2, 1, '2024-01-01 00:00:00'),
    ( 6,  2, 2, '2024-01-01 00:00:00'),
    ( 7,  3, 1, '2024-01-01 00:00:00'),
    ( 8,  4, 1, '2024-01-01 00:00:00'),
    ( 9,  4, 1, '2024-01-01 00:00:00'),
    (10,  5, 2, '2024-01-01 00:00:00'),
    (11,  6, 1, '2024-01-01 00:00:00'),
    (12,  7, 1, '2024-01-01 00:00:00'),
    (13,  8, 2, '2024-01-01 00:00:00'),
    (14,  9, 1, '2024-01-01 00:00:00'),
    (15, 10, 1, '2024-01-01 00:00:00'),
    (16, 10, 2, '2024-01-01 00:00:00'),
    (17, 11, 1, '2024-01-01 00:00:00'),
    (18, 13, 2, '2024-01-01 00:00:00'),
    (19, 14, 1, '2024-01-01 00:00:00'),
    (20, 15, 1, '2024-01-01 00:00:00'),
    (21, 16, 2, '2024-01-01 00:00:00'),
    (22, 17, 1, '2024-01-01 00:00:00'),
    (23, 18, 1, '2024-01-01 00:00:00'),
    (24, 19, 2, '2024-01-01 00:00:00'),
    (25, 20, 1, '2024-01-01 00:00:00'),
    (26, 21, 1, '2024-01-01 00:00:00'),
    (27, 22, 2, '2024-01-01 00:00:00'),
    (28, 23, 1, '2024-01-01 00:00:00'),
    (29, 24, 1, '2024-01-01 00:00:00'),
    (30, 25, 2, '2024-01-01 00:00:00'),
    (31, 26, 1, '2024-01-01 00:00:00'),
    (32, 27, 1, '2024-01-01 00:00:00'),
    (33, 27, 2, '2024-01-01 00:00:00')
ON CONFLICT DO NOTHING;

-- Customers 1-3 belong to store 1, 4-5 to store 2, customer 5 is inactive.
-- Customer 1 has PIN 1234 (stored as the SHA2 256 hex digest, 64 chars).
INSERT INTO public.customer
    (customer_id, store_id, first_name, last_name, email, pin_hash, active, created_at, last_update)
VALUES
    (1, 1, 'Mary',      'Smith',    'mary.smith@example.com',        encode(sha256(convert_to('1234', 'UTF8')), 'hex'), TRUE,  '2024-02-14 22:04:36', '2024-02-14 22:04:36'),
    (2, 1, 'Patricia',  'Johnson',  'patricia.johnson@example.com',  NULL,              TRUE,  '2024-02-14 22:04:37', '2024-02-14 22:04:37'),
    (3, 1, 'Linda',     'Williams', 'linda.williams@example.com',    NULL,              TRUE,  '2024-02-15 09:12:00', '2024-02-15 09:12:00'),
    (4, 2, 'Barbara',   'Jones',    'barbara.jones@example.com',     NULL,              TRUE,  '2024-02-16 10:30:00', '2024-02-16 10:30:00'),
    (5, 2, 'Elizabeth', 'Brown',    'elizabeth.brown@example.com',   NULL,              FALSE, '2024-02-17 17:45:00', '2024-02-17 17:45:00')
ON CONFLICT DO NOTHING;

-- Rental 1 (inventory 1 = film 1 at store 1) is NOT returned, so film 1 has
-- 2 copies in stock at store 1 (inventory 2 and 3). Rental 5 (inventory 12 =
-- film 7 at store 1) is also still out.
INSERT INTO public.rental (rental_id, inventory_id, customer_id, rental_date, return_date, last_update) VALUES
    (1,  1, 1, '2024-05-24 22:53:30', NULL,                  '2024-05-24 22:53:30'),
    (2,  2, 2, '2024-05-25 11:30:37', '2024-05-28 10:15:00', '2024-05-28 10:15:00'),
    (3,  4, 4, '2024-05-26 09:00:00', '2024-05-30 18:00:00', '2024-05-30 18:00:00'),
    (4,  5, 1, '2024-06-01 14:10:00', '2024-06-03 12:00:00', '2024-06-03 12:00:00'),
    (5, 12, 3, '2024-06-10 16:45:00', NULL,                  '2024-06-10 16:45:00'),
    (6, 20, 1, '2024-06-15 19:20:00', '2024-06-18 09:00:00', '2024-06-18 09:00:00'),
    (7, 10, 5, '2024-06-20 13:00:00', '2024-06-22 13:00:00', '2024-06-22 13:00:00')
ON CONFLICT DO NOTHING;

-- Customer 1 paid 0.99 + 4.99 + 4.99 = 10.97 before 2030, plus a 10.00
-- prepayment dated 2031-01-01 (excluded by get_customer_balance for 2030-01-01).
INSERT INTO public.payment (payment_id, customer_id, rental_id, amount, payment_date, last_update) VALUES
    (1, 1, 1,    0.99,  '2024-05-24 22:55:00', '2024-05-24 22:55:00'),
    (2, 2, 2,    0.99,  '2024-05-25 11:31:00', '2024-05-25 11:31:00'),
    (3, 4, 3,    0.99,  '2024-05-26 09:01:00', '2024-05-26 09:01:00'),
    (4, 1, 4,    4.99,  '2024-06-01 14:11:00', '2024-06-01 14:11:00'),
    (5, 3, 5,    0.99,  '2024-06-10 16:46:00', '2024-06-10 16:46:00'),
    (6, 1, 6,    4.99,  '2024-06-15 19:21:00', '2024-06-15 19:21:00'),
    (7, 5, 7,    2.99,  '2024-06-20 13:01:00', '2024-06-20 13:01:00'),
    (8, 1, NULL, 10.00, '2031-01-01 00:00:00', '2024-06-30 12:00:00')
ON CONFLICT DO NOTHING;

-- Explicit ids do not advance identity sequences: move each one to the highest
-- id, so the next customer gets id 6 and the next payment id 9, as on MariaDB.
SELECT setval(pg_get_serial_sequence('public.category', 'category_id'), max(category_id)) FROM public.category;
SELECT setval(pg_get_serial_sequence('public.film', 'film_id'), max(film_id)) FROM public.film;
SELECT setval(pg_get_serial_sequence('public.store', 'store_id'), max(store_id)) FROM public.store;
SELECT setval(pg_get_serial_sequence('public.inventory', 'inventory_id'), max(inventory_id)) FROM public.inventory;
SELECT setval(pg_get_serial_sequence('public.customer', 'customer_id'), max(customer_id)) FROM public.customer;
SELECT setval(pg_get_serial_sequence('public.rental', 'rental_id'), max(rental_id)) FROM public.rental;
SELECT setval(pg_get_serial_sequence('public.payment', 'payment_id'), max(payment_id)) FROM public.payment;
