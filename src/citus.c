/*
 * citus.c
 *		order_mgmt distributed by order_id on Citus (0.9.0, README "Scaling
 *		out").  On a single node none of this runs: OmCitusActive() is false
 *		and every caller takes its single-node path.
 *
 * What runs where once order_mgmt.distribute() has run:
 * - The coordinator (node group 0) runs the API.  Stock (stock_levels,
 *   stock_pending, inventory_movements), credit_accounts and the consumers'
 *   cursors stay plain tables there, so stock and credit decisions keep
 *   their single-node locks (advisory locks of one node) and cost no
 *   two-phase commit.
 * - Triggers run on the workers, on the shards of the order they change.
 *   They may read and write that order's co-located shards (Citus allows
 *   local tasks in triggers) but reach nothing on another node.  So the two
 *   things a trigger does to data that is not the order's own, a stock
 *   movement (release on cancellation, ship on dispatch) and a change of
 *   the customer's credit exposure, are recorded as rows of order_effects,
 *   co-located with the order, and the coordinator applies them before it
 *   commits (apply_effects): every such change is one that cannot fail
 *   (it never lowers availability), so applying it at commit decides
 *   nothing differently.  The API arms each order it locks (citus_arm), a
 *   deferred trigger on the coordinator drains the armed orders' effects,
 *   and a deferred trigger on the workers refuses to commit an effect that
 *   nobody drained (a direct UPDATE that bypassed the API): OM060.
 * - actor, reason, automated and db_role are settings of the coordinator's
 *   session; the lifecycle trigger on a worker reads them there.  Citus
 *   sends a SET LOCAL to the workers of the transaction (propagate_set_
 *   commands = local), nothing else, so the API sends the four values as
 *   SET LOCAL before each step that moves a status (set_reason,
 *   citus_arm), only those that changed since it last sent them.
 */
#include "postgres.h"

#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "order_mgmt.h"

/* Is this database distributed, and which node group is this node? */
typedef struct CitusMode
{
	bool		active;			/* citus installed and orders distributed */
	int32		group;			/* pg_dist_local_group.groupid; 0: coordinator */
} CitusMode;

/*
 * Watches orders: create_distributed_table (and Citus' metadata sync on a
 * worker) sends a relcache invalidation of the table it distributes.
 */
static OmCache citus_cache = {
	.name = "order_mgmt citus mode",
	.ntables = 1,
	.tables = {"orders"},
};

/* The boolean or int4 first column of the last SPI result, row 0. */
static Datum
FirstValue(bool *isnull)
{
	*isnull = true;
	if (SPI_processed == 0)
		return (Datum) 0;
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
}

static void *
LoadCitusMode(MemoryContext cxt)
{
	CitusMode  *m = palloc0(sizeof(CitusMode));
	bool		isnull;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	if (!OidIsValid(get_extension_oid("citus", true)))
		return m;
	/* pg_dist_* exist only with citus: the query is planned only now */
	values[0] = ObjectIdGetDatum(citus_cache.relids[0]);
	if (SPI_execute_with_args("SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition"
							  " WHERE logicalrelid OPERATOR(pg_catalog.=) $1),"
							  " (SELECT groupid FROM pg_catalog.pg_dist_local_group)",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the Citus metadata");
	m->active = DatumGetBool(FirstValue(&isnull)) && !isnull;
	if (SPI_processed > 0)
	{
		Datum		g = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

		m->group = isnull ? 0 : DatumGetInt32(g);
	}
	return m;
}

static CitusMode *
GetCitusMode(void)
{
	if (OmCacheValid(&citus_cache))
		return citus_cache.data;
	return OmCacheRebuild(&citus_cache, LoadCitusMode);
}

/* Has order_mgmt.distribute() distributed this database? */
bool
OmCitusActive(void)
{
	return GetCitusMode()->active;
}

/* Distributed, and this node is a worker (not the coordinator)? */
bool
OmOnCitusWorker(void)
{
	CitusMode  *m = GetCitusMode();

	return m->active && m->group != 0;
}

/*
 * (inside SPI) This node's placement of a reference table, or InvalidOid
 * when relid is not a reference table or has no placement here.
 */
Oid
OmCitusLocalPlacement(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		isnull;
	Datum		d;

	if (SPI_execute_with_args("SELECT pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid))"
							  " FROM pg_catalog.pg_dist_shard s"
							  " JOIN pg_catalog.pg_dist_partition d USING (logicalrelid)"
							  " JOIN pg_catalog.pg_dist_placement p USING (shardid)"
							  " WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1"
							  " AND d.partmethod OPERATOR(pg_catalog.=) 'n'"
							  " AND p.groupid OPERATOR(pg_catalog.=)"
							  " (SELECT groupid FROM pg_catalog.pg_dist_local_group)",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the Citus placements");
	d = FirstValue(&isnull);
	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/* citus_active() -> boolean: has distribute() run in this database? */
PG_FUNCTION_INFO_V1(citus_active);
Datum
citus_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(OmCitusActive());
}

/* on_citus_worker() -> boolean: distributed, and this node is a worker. */
PG_FUNCTION_INFO_V1(on_citus_worker);
Datum
on_citus_worker(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(OmOnCitusWorker());
}

/* ------------------------------------------------------------------------
 * actor, reason, automated and db_role on the workers
 * ------------------------------------------------------------------------
 */
#define NCONTEXT 4
static const char *const context_gucs[NCONTEXT] = {
	"order_mgmt.actor", "order_mgmt.reason", "order_mgmt.automated", "order_mgmt.db_role"
};
static char *context_sent[NCONTEXT];	/* sent in this transaction (TopMemoryContext) */
static bool context_callbacks = false;

static void
ForgetSentContext(void)
{
	for (int i = 0; i < NCONTEXT; i++)
	{
		if (context_sent[i] != NULL)
			pfree(context_sent[i]);
		context_sent[i] = NULL;
	}
}

static void
ContextXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		ForgetSentContext();
}

/*
 * A rolled-back savepoint takes back what was sent inside it (Citus rolls
 * the workers back to it too): send everything again next time.
 */
static void
ContextSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		ForgetSentContext();
}

/* The value a worker must have for context GUC i. */
static const char *
ContextValue(int i)
{
	switch (i)
	{
		case 0:
			return om_actor ? om_actor : "";
		case 1:
			return om_reason ? om_reason : "";
		case 2:
			return om_automated ? "on" : "off";
		default:
			return OmDbRole();	/* this session's, which the workers' is not */
	}
}

/*
 * Is this the backend of a client on the coordinator, whose settings the
 * workers need?  (Not a worker, and not a connection Citus itself opened
 * to this node.)
 */
static bool
SendsContext(void)
{
	const char *app = GetConfigOption("application_name", true, false);

	if (!OmCitusActive() || OmOnCitusWorker())
		return false;
	return app == NULL || strncmp(app, "citus_internal", 14) != 0;
}

/*
 * Send the context settings that changed since they were last sent in this
 * transaction, as SET LOCAL, which Citus passes to every worker of the
 * transaction (and to those it connects to later).  Citus propagates a SET
 * LOCAL only with citus.propagate_set_commands = local, set here for the
 * statement alone.
 */
static void
SyncContext(void)
{
	int			level = -1;

	if (!context_callbacks)
	{
		RegisterXactCallback(ContextXactCallback, NULL);
		RegisterSubXactCallback(ContextSubXactCallback, NULL);
		context_callbacks = true;
	}
	for (int i = 0; i < NCONTEXT; i++)
	{
		const char *value = ContextValue(i);

		if (context_sent[i] != NULL && strcmp(context_sent[i], value) == 0)
			continue;
		if (level < 0)
		{
			level = NewGUCNestLevel();
			(void) set_config_option("citus.propagate_set_commands", "local", PGC_USERSET,
									 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
		}
		if (SPI_execute(psprintf("SET LOCAL %s = %s", context_gucs[i], quote_literal_cstr(value)),
						false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not send %s to the workers", context_gucs[i]);
		if (context_sent[i] != NULL)
			pfree(context_sent[i]);
		context_sent[i] = MemoryContextStrdup(TopMemoryContext, value);
	}
	if (level >= 0)
	{
		SPI_finish();
		AtEOXact_GUC(true, level);	/* propagate_set_commands only */
	}
}

/*
 * set_reason(reason text): order_mgmt.reason for the rest of the
 * transaction (set_config(..., true)), and on the coordinator of a Citus
 * cluster on its workers too, with the other context settings.  The API
 * calls it before every statement that moves a status.
 */
PG_FUNCTION_INFO_V1(set_reason);
Datum
set_reason(PG_FUNCTION_ARGS)
{
	const char *reason = PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0));

	(void) set_config_option("order_mgmt.reason", reason, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	if (SendsContext())
		SyncContext();
	PG_RETURN_VOID();
}

/*
 * citus_arm(order_id): called by lock_order (every API call locks its
 * orders first) and wherever the API takes an order's lock another way.
 * On a single node it does nothing.  On Citus: refuses a worker (the API
 * runs on the coordinator), sends the context settings, wakes the relay at
 * commit, and arms the order: before this transaction commits, a deferred
 * trigger applies the stock and credit effects its triggers recorded.
 */
PG_FUNCTION_INFO_V1(citus_arm);
Datum
citus_arm(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	OmSavedUser saved;

	if (!OmCitusActive())
		PG_RETURN_VOID();
	if (OmOnCitusWorker())
		ereport(ERROR,
				(errcode(ERRCODE_OM_CITUS_COORDINATOR),
				 errmsg("order_mgmt's API runs on the Citus coordinator"),
				 errdetail("This node is a worker: the stock, the credit accounts and the consumers live on the coordinator."),
				 errhint("Connect to the coordinator.")));
	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();		/* lock_order reports the null order_id */
	values[0] = PG_GETARG_DATUM(0);
	if (SendsContext())
		SyncContext();
	OmRelayWakeAtCommit();
	OmSpiBegin(OmRelid("effects_armed"), &saved);
	if (SPI_execute_plan(OmKeepPlan(&plan, "INSERT INTO " OM_SCHEMA ".effects_armed (order_id)"
									" VALUES ($1) ON CONFLICT DO NOTHING", 1, argtypes),
						 values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not arm order %lld", (long long) DatumGetInt64(values[0]));
	OmSpiEnd(&saved);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Effects: stock and credit changes recorded by triggers on the workers
 * ------------------------------------------------------------------------
 */

/*
 * Record one effect of a trigger on a worker (stock_move, credit_add):
 * a row of order_effects on the order's own shard, a local task.
 */
void
OmCitusRecordEffect(int64 order_id, const char *kind, Datum customer, Datum amount,
					Datum warehouse, Datum sku, const char *stock_kind,
					int32 on_hand_delta, int32 reserved_delta,
					Datum line_no, bool line_null, Datum reason, bool reason_null)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[11] = {INT8OID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID,
	INT4OID, INT4OID, INT4OID, TEXTOID};
	Datum		values[11];
	char		nulls[11];
	bool		credit = strcmp(kind, "credit") == 0;
	OmSavedUser saved;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(order_id);
	values[1] = CStringGetTextDatum(kind);
	values[2] = customer;
	values[3] = amount;
	values[4] = warehouse;
	values[5] = sku;
	values[6] = stock_kind ? CStringGetTextDatum(stock_kind) : (Datum) 0;
	values[7] = Int32GetDatum(on_hand_delta);
	values[8] = Int32GetDatum(reserved_delta);
	values[9] = line_no;
	values[10] = reason;
	for (int i = 2; i <= 3; i++)
		nulls[i] = credit ? ' ' : 'n';
	for (int i = 4; i <= 8; i++)
		nulls[i] = credit ? 'n' : ' ';
	nulls[9] = credit || line_null ? 'n' : ' ';
	nulls[10] = credit || reason_null ? 'n' : ' ';

	OmSpiBegin(OmRelid("order_effects"), &saved);
	if (SPI_execute_plan(OmKeepPlan(&plan, "INSERT INTO " OM_SCHEMA ".order_effects"
									" (order_id, kind, customer_id, amount, warehouse_id, sku,"
									" stock_kind, on_hand_delta, reserved_delta, line_no, reason)"
									" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
									11, argtypes),
						 values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record an effect of order %lld", (long long) order_id);
	OmSpiEnd(&saved);
}

/*
 * (coordinator) Apply the effects of the orders this transaction armed
 * now, before a decision reads what they change (a credit decision after
 * a confirmation of the same customer in the same transaction); they stay
 * armed for what the transaction does next.
 */
void
OmCitusApplyArmedEffects(void)
{
	static SPIPlanPtr plan = NULL;
	OmSavedUser saved;

	OmSpiBegin(OmRelid("effects_armed"), &saved);
	if (SPI_execute_plan(OmKeepPlan(&plan, "SELECT " OM_SCHEMA ".apply_armed_effects(false)", 0, NULL),
						 NULL, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not apply the pending effects");
	OmSpiEnd(&saved);
}

/*
 * order_effects_check(): deferred constraint trigger AFTER INSERT on
 * order_effects, so it fires on a worker when its part of the transaction
 * prepares or commits.  The coordinator deletes (applies) every effect of
 * the orders the API armed before that; an effect still there was made by
 * a statement that bypassed the API (a direct UPDATE), whose stock or
 * credit change nobody would apply: refuse it.
 */
PG_FUNCTION_INFO_V1(order_effects_check);
Datum
order_effects_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	bool		isnull;
	Datum		order_id;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || trigdata->tg_trigslot == NULL)
		elog(ERROR, "order_effects_check must be an AFTER INSERT row trigger");
	/* deleted by this transaction (applied): nothing to say */
	if (!table_tuple_satisfies_snapshot(trigdata->tg_relation, trigdata->tg_trigslot, SnapshotSelf))
		return PointerGetDatum(NULL);
	order_id = slot_getattr(trigdata->tg_trigslot,
							SPI_fnumber(RelationGetDescr(trigdata->tg_relation), "order_id"), &isnull);
	ereport(ERROR,
			(errcode(ERRCODE_OM_CITUS_COORDINATOR),
			 errmsg("a change of order %lld moves stock or credit exposure outside the API",
					isnull ? 0LL : (long long) DatumGetInt64(order_id)),
			 errdetail("On Citus, the coordinator applies those changes for the orders the API locked; this statement did not go through the API."),
			 errhint("Use order_mgmt's functions (set_status, cancel_order, dispatch_shipment, ...) on the coordinator.")));
	return PointerGetDatum(NULL);
}
