-- The BI report page (tools/report.sh writes it to OUTDIR/index.html):
-- KPIs in total, by channel and by day, the process map (process.svg,
-- rendered next to it), the top variants, the open orders at risk and the
-- stock short of demand.  Reads the BI views only, so order_mgmt_reader
-- can run it.  Tables are psql's HTML output (values escaped by psql);
-- headings are \qecho.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
\pset footer off
\pset null ''
\pset format unaligned
\pset tuples_only on

-- the KPIs are read three times below: compute them once
CREATE TEMP TABLE kpi AS SELECT * FROM order_mgmt.kpi_daily;

SELECT format($h$<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>order_mgmt report: %1$s</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #1d2733; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
p.meta { color: #5a6a7a; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #c9d3de; padding: 3px 8px; }
th { background: #eef3fb; } td { text-align: right; }
td:first-child { text-align: left; } table.wide td { text-align: left; }
img.map { max-width: 100%%; border: 1px solid #c9d3de; }
</style></head><body>
<h1>order_mgmt report</h1>
<p class="meta">Database %1$s, generated %2$s UTC: %3$s orders placed %4$s to %5$s,
%6$s events. Definitions: docs/bi.md (README, section "BI views").</p>$h$,
    replace(replace(replace(current_database(), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
    coalesce((SELECT orders FROM kpi WHERE day IS NULL AND channel = 'all'), 0),
    coalesce((SELECT min(day)::text FROM kpi), '-'),
    coalesce((SELECT max(day)::text FROM kpi), '-'),
    (SELECT coalesce(events, 0) FROM kpi WHERE day IS NULL AND channel = 'all'));

\pset format html
\pset tuples_only off

-- One KPI row per group, rates in percent; the same columns everywhere.
\set kpis 'orders AS "Orders", cancelled AS "Cancelled", delivered AS "Delivered", measured AS "Measured", to_char(100 * otd_rate, ''FM990.0 %'') AS "OTD", to_char(100 * in_full_rate, ''FM990.0 %'') AS "In full", to_char(100 * otif_rate, ''FM990.0 %'') AS "OTIF", cycle_time_p50_hours AS "Cycle p50 h", cycle_time_p90_hours AS "Cycle p90 h", to_char(100 * touchless_rate, ''FM990.0 %'') AS "Touchless", to_char(100 * credit_hold_rate, ''FM990.0 %'') AS "Credit holds", credit_hold_mean_hours AS "Credit hold h", to_char(100 * rework_rate, ''FM990.0 %'') AS "Rework", to_char(100 * return_rate, ''FM990.0 %'') AS "Returns"'

\qecho '<h2 id="kpi-total">KPIs: all orders</h2>'
SELECT 'all channels' AS "Scope", :kpis FROM kpi WHERE day IS NULL AND channel = 'all';

\qecho '<h2 id="kpi-channel">KPIs by channel</h2>'
SELECT channel AS "Channel", :kpis FROM kpi
 WHERE day IS NULL AND channel <> 'all' ORDER BY orders DESC, channel;

\qecho '<h2 id="kpi-daily">KPIs by day of placement (latest 31 days with orders)</h2>'
SELECT day AS "Day", :kpis FROM kpi
 WHERE day IS NOT NULL AND channel = 'all' ORDER BY day DESC LIMIT 31;

\qecho '<h2 id="process-map">Process map</h2>'
\qecho '<p class="meta">Directly-follows graph of every order: boxes count occurrences, edges show how often one step follows another and the mean time between them.</p>'
\qecho '<img class="map" src="process.svg" alt="process map">'

\qecho '<h2 id="variants">Process variants (top 10)</h2>'
\pset tableattr 'class="wide"'
SELECT variant_rank AS "Rank", cases AS "Cases", to_char(100 * share, 'FM990.0 %') AS "Share",
       mean_throughput_hours AS "Mean h", p90_throughput_hours AS "p90 h", steps AS "Steps",
       variant AS "Variant"
  FROM order_mgmt.process_variants WHERE variant_rank <= 10 ORDER BY variant_rank;

\qecho '<h2 id="at-risk">Open orders at risk</h2>'
SELECT order_id AS "Order", channel AS "Channel", status AS "Status",
       promised_delivery_latest AS "Promised by", estimated_delivery_latest AS "Estimate",
       days_left AS "Days left", reason AS "Reason"
  FROM order_mgmt.open_order_risk
 ORDER BY days_left NULLS LAST, order_id LIMIT 100;

\qecho '<h2 id="stock">Stock short of demand</h2>'
SELECT warehouse_id AS "Warehouse", sku AS "SKU", on_hand AS "On hand", reserved AS "Reserved",
       available_to_promise AS "ATP", backordered AS "Backordered", net_available AS "Net"
  FROM order_mgmt.inventory_availability
 WHERE backordered > 0 OR net_available < 0
 ORDER BY net_available, warehouse_id, sku LIMIT 100;

\qecho '</body></html>'
