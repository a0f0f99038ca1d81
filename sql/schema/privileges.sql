-- Roles, privileges and pg_dump registration.

------------------------------------------------------------------------
-- pg_dump keeps every user-data table and sequence; seed statuses and
-- transitions are filtered so a restore does not duplicate them.  Derived
-- tables are not dumped: credit_accounts is rebuilt by the restore's own
-- inserts (order_mgmt_money), stock_pending is empty outside a transaction.
------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.products', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.warehouses', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.calendars', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.calendar_exceptions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.services', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.lanes', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.zone_rules', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.statuses', 'WHERE NOT is_seed');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.transitions', 'WHERE NOT is_seed');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.orders', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.orders_order_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.shipments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.shipments_shipment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.shipment_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.returns', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.returns_return_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.return_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.return_inspections', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.return_inspections_inspection_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events_seq_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.stock_levels', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.inventory_movements', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.inventory_movements_movement_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_holds', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_holds_hold_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.payments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.payments_payment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tracking_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tracking_events_tracking_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.consumers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.bi_settings', '');
-- Citus (0.9.0): the claimed business keys and the cursors per node group
-- (on a single node both stay empty); order_effects and effects_armed
-- live only inside a transaction.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.business_keys', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.consumer_cursors', '');

------------------------------------------------------------------------
-- Roles (cluster-wide; they stay when the extension is dropped)
------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'order_mgmt_reader') THEN
        CREATE ROLE order_mgmt_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'order_mgmt_operator') THEN
        CREATE ROLE order_mgmt_operator NOLOGIN;
    END IF;
END;
$$;

------------------------------------------------------------------------
-- Nothing is executable by PUBLIC; operators call the API, readers read
-- the views.
------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
-- (ALL FUNCTIONS leaves procedures out) distribute() is the DBA's
REVOKE ALL ON PROCEDURE @extschema@.distribute() FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO order_mgmt_reader, order_mgmt_operator;
GRANT SELECT ON ALL TABLES IN SCHEMA @extschema@ TO order_mgmt_operator;
GRANT EXECUTE ON FUNCTION
    @extschema@.place_order(text, jsonb, jsonb, text, text, text, date, boolean),
    @extschema@.set_status(text, bigint, text, text),
    @extschema@.confirm_order(bigint),
    @extschema@.hold_order(bigint, text, text),
    @extschema@.release_hold(bigint, bigint, text),
    @extschema@.cancel_order(bigint, text),
    @extschema@.cancel_line(bigint, int, int, text),
    @extschema@.receive_stock(text, text, int, text),
    @extschema@.adjust_stock(text, text, int, text),
    @extschema@.authorize_payment(bigint, numeric, text),
    @extschema@.capture_payment(bigint, numeric, text),
    @extschema@.refund_payment(bigint, numeric, text, bigint),
    @extschema@.void_payment(bigint, numeric, text),
    @extschema@.valid_time_zone(text),
    @extschema@.is_business_day(date, text),
    @extschema@.add_business_days(date, int, text),
    @extschema@.estimate_delivery(text, text, text, text, timestamptz, timestamptz),
    @extschema@.best_service(text, text, text, timestamptz, timestamptz, date, text),
    @extschema@.estimate_order_delivery(bigint),
    @extschema@.choose_service(bigint, text, timestamptz),
    @extschema@.estimate_transit(text, text, text, text, timestamptz),
    @extschema@.release_to_warehouse(bigint),
    @extschema@.start_picking(bigint),
    @extschema@.pack_shipment(bigint, int, int, int, int, int),
    @extschema@.label_shipment(bigint, text, text, text, text),
    @extschema@.dispatch_shipment(bigint),
    @extschema@.cancel_shipment(bigint, text),
    @extschema@.record_tracking_event(text, text, text, timestamptz, text),
    @extschema@.request_return(bigint, jsonb, text, text),
    @extschema@.approve_return(bigint),
    @extschema@.reject_return(bigint, text),
    @extschema@.receive_return(bigint),
    @extschema@.inspect_return(bigint, jsonb),
    @extschema@.refund_return(bigint, numeric),
    @extschema@.exchange_return(bigint),
    @extschema@.complete_order(bigint),
    @extschema@.complete_due_orders(timestamptz),
    @extschema@.return_window(),
    @extschema@.return_deadline(bigint)
TO order_mgmt_operator;
-- views call their functions with the reader's rights
GRANT EXECUTE ON FUNCTION
    @extschema@.estimate_order_window(@extschema@.orders, @extschema@.order_lines[])
    TO order_mgmt_reader, order_mgmt_operator;
-- (0.11.0) the rules of the current window, which order_overview and
-- open_order_risk call (inlined: the planner inlines them only for a role
-- that may execute them)
GRANT EXECUTE ON FUNCTION
    @extschema@.order_in_flight(text),
    @extschema@.shipment_window_counts(text),
    @extschema@.own_estimate_due(text, bigint, bigint),
    @extschema@.current_window_bound(date, date, boolean)
    TO order_mgmt_reader, order_mgmt_operator;
-- Trigger conditions and trigger functions run as the role that writes the
-- row; these two only read the class of a status and the claimed actor.
GRANT EXECUTE ON FUNCTION @extschema@.status_class(text, text), @extschema@.current_actor()
    TO PUBLIC;
-- (0.11.0) the trigger conditions on status moves, which only read classes
GRANT EXECUTE ON FUNCTION @extschema@.status_in_class(text, text, text[]),
                          @extschema@.class_entered(text, text, text, text[])
    TO PUBLIC;
GRANT SELECT ON @extschema@.orders_at_risk TO order_mgmt_reader;
-- where is my order (0.5.0); it calls estimate_order_window and status_class
GRANT SELECT ON @extschema@.order_overview TO order_mgmt_reader;
-- The event stream (0.7.0, stream.sql): operators consume (register, fetch,
-- acknowledge) and read the cursors; retention (purge_events,
-- drop_consumer) is left to the DBA; readers watch the lag, not the events.
GRANT EXECUTE ON FUNCTION
    @extschema@.register_consumer(text, boolean),
    @extschema@.fetch_events(text, int),
    @extschema@.ack_events(text, xid8, bigint)
TO order_mgmt_operator;
GRANT SELECT ON @extschema@.consumer_lag TO order_mgmt_reader;
-- consumer_lag calls it with the reader's rights (counts and times only)
GRANT EXECUTE ON FUNCTION @extschema@.consumer_backlog(text)
    TO order_mgmt_reader, order_mgmt_operator;

-- BI (0.8.0, bi.sql): readers and operators (who read every view) read
-- the views and run the functions they call: SECURITY INVOKER functions
-- that read views only.  bi_settings is dumped and written by the owner.
GRANT SELECT ON @extschema@.bi_config, @extschema@.order_zones, @extschema@.event_log,
                @extschema@.order_facts, @extschema@.kpi_daily, @extschema@.process_steps,
                @extschema@.process_dfg, @extschema@.process_variants,
                @extschema@.open_order_risk, @extschema@.inventory_availability
    TO order_mgmt_reader;
GRANT EXECUTE ON FUNCTION
    @extschema@.is_manual_event(boolean, text, text[]),
    @extschema@.process_dfg(timestamptz, timestamptz),
    @extschema@.process_map_dot(timestamptz, timestamptz),
    @extschema@.export_xes(timestamptz, timestamptz)
TO order_mgmt_reader, order_mgmt_operator;
-- (0.10.0) the aggregate order_facts reads the log with
GRANT EXECUTE ON FUNCTION
    @extschema@.event_facts(text, bigint, text, text, timestamptz, boolean, text, text[])
TO order_mgmt_reader, order_mgmt_operator;
-- (0.13.0) process_steps' filter and the aggregates process_variants and
-- process_dfg read the log with
GRANT EXECUTE ON FUNCTION
    @extschema@.is_process_step(text, text),
    @extschema@.case_path(text, timestamptz, bigint),
    @extschema@.case_trace(text, timestamptz, bigint),
    @extschema@.dfg_bins(bytea)
TO order_mgmt_reader, order_mgmt_operator;
-- (0.13.0) process_dfg(since, until) reads the traces as the reader
GRANT SELECT ON @extschema@.process_traces TO order_mgmt_reader;
