-- bench/history_setup.sql: master data of the BI history (bench/history.sh):
-- three warehouses in two time zones, a carrier service, 2,000 credit
-- customers (50 of them with no credit: every order of theirs goes on a
-- credit hold), 50,000 prepaid customers, 500 skus and 20 scarce skus
-- (no stock until a purchase arrives: backorders), the re-pack edge of
-- this site's shipment graph, and which actors are systems.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET search_path = order_mgmt, pg_catalog;
INSERT INTO calendars (calendar_id, name, tz, workdays) VALUES
    ('DE', 'German working days', 'Europe/Berlin', '{1,2,3,4,5}'),
    ('US', 'US working days', 'America/New_York', '{1,2,3,4,5}');
INSERT INTO warehouses (warehouse_id, name, tz, cutoff_local, calendar_id, zone) VALUES
    ('BER', 'Berlin', 'Europe/Berlin', '14:00', 'DE', 'DE'),
    ('LEJ', 'Leipzig', 'Europe/Berlin', '15:00', 'DE', 'DE'),
    ('NYC', 'New York', 'America/New_York', '13:00', 'US', 'US');
INSERT INTO services (service_id, carrier, handling_min, handling_max, transit_min, transit_max,
                      transit_calendar_id, delivery_calendar_id, cost)
VALUES ('STD', 'DHL', 0, 1, 1, 2, 'DE', 'DE', 4.90);
INSERT INTO zone_rules (country, postal_prefix, zone) VALUES ('DE', '', 'DE'), ('US', '', 'US');
INSERT INTO lanes (service_id, origin_zone, dest_zone, transit_min, transit_max, cost)
VALUES ('STD', 'US', 'US', 2, 3, 7.90);
INSERT INTO customers (customer_id, name, payment_terms, credit_limit)
SELECT 'C' || lpad(i::text, 5, '0'), 'credit customer ' || i, 'credit',
       CASE WHEN i <= 50 THEN 0 ELSE 1000000000 END
  FROM generate_series(1, 2000) i;
INSERT INTO customers (customer_id, name, payment_terms)
SELECT 'P' || lpad(i::text, 5, '0'), 'prepaid customer ' || i, 'prepaid'
  FROM generate_series(1, 50000) i;
INSERT INTO products (sku, name, list_price, weight_g)
SELECT 'SKU-' || lpad(i::text, 3, '0'), 'article ' || i, 5 + (i * 37) % 195, 100 + (i * 53) % 2000
  FROM generate_series(1, 500) i;
INSERT INTO products (sku, name, list_price, weight_g)
SELECT 'SCARCE-' || i, 'scarce article ' || i, 49.90, 500 FROM generate_series(1, 20) i;
-- a site's own edge: a packed parcel opened again to be re-picked
INSERT INTO transitions (entity, from_status, to_status, activity)
VALUES ('shipment', 'packed', 'picking', 'repack_started');
INSERT INTO bi_settings (system_actors)
VALUES ('{webshop,marketplace-api,edi-gateway,wms,psp,erp,scheduler,carrier:%}');
