-- Delivery promise: the issue's fixture, as a readable table.
\set ECHO none
\set QUIET on
\i test/fixtures/promise_fixture.sql
\set QUIET off
\set ECHO all
SET TimeZone = 'America/Los_Angeles';  -- results never depend on it

SELECT t AT TIME ZONE 'UTC' AS placed_utc, (t AT TIME ZONE 'Europe/Berlin')::time AS berlin,
       e.*
  FROM unnest('{2025-09-09 08:00Z, 2025-09-09 12:00Z, 2025-09-09 12:30Z,
                2025-09-13 10:00Z, 2025-10-02 13:00Z}'::timestamptz[]) t,
       LATERAL order_mgmt.estimate_delivery('BER', 'STD', 'DE', '10115', t) e;

SELECT day, order_mgmt.is_business_day(day, 'DE-HANDLING') AS handling,
       order_mgmt.add_business_days(day, 1, 'DE-HANDLING') AS plus_1,
       order_mgmt.add_business_days(day, -1, 'DE-HANDLING') AS minus_1
  FROM generate_series(date '2025-12-23', '2026-01-02', '1 day') g, LATERAL (SELECT g::date AS day) d;

-- errors
SELECT order_mgmt.estimate_delivery('NOPE', 'STD', 'DE', '10115', now());
SELECT order_mgmt.add_business_days('2025-09-09', 1, 'NOPE');
INSERT INTO order_mgmt.calendars (calendar_id, workdays) VALUES ('NEVER', '{}');
SELECT order_mgmt.add_business_days('2025-09-09', 1, 'NEVER');
RESET TimeZone;
