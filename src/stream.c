/*
 * stream.c
 *		Retention of the event log: purge_events, the only way rows ever
 *		leave order_mgmt.events.
 *
 * The log is append-only (events.c's trigger refuses UPDATE, DELETE and
 * TRUNCATE with OM003).  purge_events deletes with an ordinary DELETE, so
 * the trigger fires for each of its rows; it lets a row go only while this
 * backend is inside purge_events and only if the row is one purge_events
 * decided may go: older than the cut-off and acknowledged by every
 * consumer.  A DELETE from anywhere else, including one run by a trigger
 * during a purge, cannot remove any other row.
 *
 * On Citus the log is in shards on the workers and a consumer has a cursor
 * per node group (citus.sql): citus_purge_events on the coordinator reads
 * the slowest cursor of each group and runs purge_shard on every placement
 * of events, which deletes as here with a horizon per group.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "order_mgmt.h"

/* What the running purge_events of this backend may delete. */
typedef struct PurgeState
{
	bool		active;
	Oid			relid;			/* order_mgmt.events */
	AttrNumber	tx_att;
	AttrNumber	seq_att;
	AttrNumber	at_att;
	TimestampTz cutoff;			/* occurred_at < cutoff */
	bool		any_position;	/* no consumer: every position is acknowledged */
	FullTransactionId tx;		/* else (tx, seq) <= the slowest cursor */
	int64		seq;
	/* Citus: the slowest cursor of each node group (ngroups > 0) */
	int			ngroups;
	int32	   *groups;
	FullTransactionId *txs;
	int64	   *seqs;
	Datum		arrays[3];		/* the same as int4[], xid8[], int8[] */
} PurgeState;

static PurgeState purge = {false};

static int64 PurgeCitus(TimestampTz cutoff);

/* Is (tx, seq) at or before the purge horizon? */
static bool
PurgeCovers(FullTransactionId tx, int64 seq)
{
	if (purge.any_position)
		return true;
	if (purge.ngroups > 0)
	{
		/* the group that wrote the event: its sequence range (citus.sql) */
		int32		g = (int32) ((seq - 1) >> 48);

		for (int i = 0; i < purge.ngroups; i++)
			if (purge.groups[i] == g)
				return FullTransactionIdPrecedes(tx, purge.txs[i]) ||
					(FullTransactionIdEquals(tx, purge.txs[i]) && seq <= purge.seqs[i]);
		return false;			/* a group no cursor knows: keep */
	}
	return FullTransactionIdPrecedes(tx, purge.tx) ||
		(FullTransactionIdEquals(tx, purge.tx) && seq <= purge.seq);
}

/*
 * Called by the append-only trigger for every UPDATE, DELETE and TRUNCATE
 * of the log: true only for a row DELETE that the purge running in this
 * backend may do.
 */
bool
OmPurgeAllowsDelete(TriggerData *trigdata)
{
	HeapTuple	tup = trigdata->tg_trigtuple;
	TupleDesc	desc;
	bool		null_tx,
				null_seq,
				null_at;
	Datum		tx,
				seq,
				at;

	if (!purge.active ||
		!TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		RelationGetRelid(trigdata->tg_relation) != purge.relid || tup == NULL)
		return false;
	desc = RelationGetDescr(trigdata->tg_relation);
	tx = heap_getattr(tup, purge.tx_att, desc, &null_tx);
	seq = heap_getattr(tup, purge.seq_att, desc, &null_seq);
	at = heap_getattr(tup, purge.at_att, desc, &null_at);
	if (null_tx || null_seq || null_at)
		return false;
	return DatumGetTimestampTz(at) < purge.cutoff &&
		PurgeCovers(DatumGetFullTransactionId(tx), DatumGetInt64(seq));
}

/* shard must be a placement of order_mgmt.events on this node (Citus). */
static void
RequireEventsShard(Oid shard)
{
	Oid			argtypes[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(shard), ObjectIdGetDatum(OmRelid("events"))};
	bool		ok;

	if (!OmCitusActive())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("purge_shard needs order_mgmt distributed on Citus")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ok = SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_dist_shard s"
							   " WHERE s.logicalrelid OPERATOR(pg_catalog.=) $2"
							   " AND pg_catalog.to_regclass(pg_catalog.shard_name($2, s.shardid))"
							   " OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
							   2, argtypes, values, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1;
	SPI_finish();
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relation %u is not a placement of %s.events on this node", shard, OM_SCHEMA)));
}

static AttrNumber
EventsColumn(Relation rel, const char *name)
{
	AttrNumber	att = SPI_fnumber(RelationGetDescr(rel), name);

	if (att <= 0)
		elog(ERROR, "%s.events has no column \"%s\"", OM_SCHEMA, name);
	return att;
}

/* now() - older_than, refusing a negative age. */
static TimestampTz
PurgeCutoff(Interval *older_than)
{
	Interval	zero = {0};

	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(older_than),
										  IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 errdetail("purge_events deletes events older than now() - older_than.")));
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
												   IntervalPGetDatum(older_than)));
}

/*
 * The slowest consumer's cursor, read under a lock that waits for (and then
 * blocks) registrations: a consumer registered while we purge would start
 * from events we are deleting.  Acknowledgements (UPDATEs) are not blocked;
 * they only move cursors forward.
 */
static void
ReadPurgeHorizon(PurgeState *st)
{
	SPI_execute("LOCK TABLE " OM_SCHEMA ".consumers IN SHARE UPDATE EXCLUSIVE MODE", false, 0);
	if (SPI_execute("SELECT acked_tx, acked_seq FROM " OM_SCHEMA ".consumers"
					" ORDER BY acked_tx, acked_seq LIMIT 1", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the consumers' cursors");
	st->any_position = SPI_processed == 0;
	if (!st->any_position)
	{
		bool		isnull;

		st->tx = DatumGetFullTransactionId(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1, &isnull));
		st->seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 2, &isnull));
	}
}

/*
 * Run the DELETE on relation (the log, or on Citus one of its shards) with
 * the trigger's permission set; returns the row count.
 */
static uint64
DeletePurgeable(const PurgeState *st, const char *relation)
{
	PurgeState	saved = purge;	/* a purge may run inside a trigger of a purge */
	Oid			types[4] = {TIMESTAMPTZOID, XID8OID, INT8OID};
	Datum		values[4];
	const char *sql;
	int			nargs;
	int			rc;

	values[0] = TimestampTzGetDatum(st->cutoff);
	values[1] = FullTransactionIdGetDatum(st->tx);
	values[2] = Int64GetDatum(st->seq);
	if (st->any_position)
	{
		sql = psprintf("DELETE FROM %s WHERE occurred_at OPERATOR(pg_catalog.<) $1", relation);
		nargs = 1;
	}
	else if (st->ngroups > 0)
	{
		/* each event against the slowest cursor of the group that wrote it */
		sql = psprintf("DELETE FROM %s e USING ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
					   " pg_catalog.unnest($4)) AS h(g, tx, seq)"
					   " WHERE e.occurred_at OPERATOR(pg_catalog.<) $1"
					   " AND ((e.seq OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog.>>) 48)"
					   " OPERATOR(pg_catalog.=) h.g"
					   " AND (e.tx, e.seq) OPERATOR(pg_catalog.<=) (h.tx, h.seq)", relation);
		nargs = 4;
		types[1] = INT4ARRAYOID;
		types[2] = get_array_type(XID8OID);
		types[3] = INT8ARRAYOID;
		for (int i = 0; i < 3; i++)
			values[i + 1] = st->arrays[i];
	}
	else
	{
		sql = psprintf("DELETE FROM %s WHERE occurred_at OPERATOR(pg_catalog.<) $1"
					   " AND (tx, seq) OPERATOR(pg_catalog.<=) ($2, $3)", relation);
		nargs = 3;
	}
	purge = *st;
	PG_TRY();
	{
		rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "purge DELETE failed: %s", SPI_result_code_string(rc));
	}
	PG_FINALLY();
	{
		purge = saved;
	}
	PG_END_TRY();
	return SPI_processed;
}

/*
 * purge_events(older_than interval) -> bigint: delete the events older than
 * now() - older_than that every consumer has acknowledged (all of them when
 * there is no consumer); returns how many were deleted.
 */
PG_FUNCTION_INFO_V1(purge_events);
Datum
purge_events(PG_FUNCTION_ARGS)
{
	PurgeState	st = {0};
	Relation	rel;
	OmSavedUser saved;
	uint64		deleted;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("older_than must not be null")));
	/*
	 * The horizon must be read after the lock on consumers, with a snapshot
	 * that sees every registration committed before it: not the transaction
	 * snapshot of REPEATABLE READ.
	 */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("purge_events must run in a READ COMMITTED transaction"),
				 errdetail("A snapshot taken before the purge locks the consumers could miss a consumer registered meanwhile."),
				 errhint("Call it outside an explicit REPEATABLE READ or SERIALIZABLE transaction.")));
	st.cutoff = PurgeCutoff(PG_GETARG_INTERVAL_P(0));
	if (OmCitusActive())
		PG_RETURN_INT64(PurgeCitus(st.cutoff));
	st.active = true;
	rel = table_open(OmRelid("events"), RowExclusiveLock);
	st.relid = RelationGetRelid(rel);
	st.tx_att = EventsColumn(rel, "tx");
	st.seq_att = EventsColumn(rel, "seq");
	st.at_att = EventsColumn(rel, "occurred_at");
	table_close(rel, NoLock);	/* kept locked until commit */

	/* as all SQL the C code runs: as the owner, search_path pinned */
	OmSpiBegin(st.relid, &saved);
	ReadPurgeHorizon(&st);
	deleted = DeletePurgeable(&st, OM_SCHEMA ".events");
	OmSpiEnd(&saved);
	PG_RETURN_INT64((int64) deleted);
}

/* Citus, on the coordinator: citus_purge_events does it shard by shard. */
static int64
PurgeCitus(TimestampTz cutoff)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {TimestampTzGetDatum(cutoff)};
	OmSavedUser saved;
	bool		isnull;
	int64		deleted;

	if (OmOnCitusWorker())
		ereport(ERROR,
				(errcode(ERRCODE_OM_CITUS_COORDINATOR),
				 errmsg("purge_events runs on the Citus coordinator")));
	OmSpiBegin(OmRelid("consumers"), &saved);
	if (SPI_execute_plan(OmKeepPlan(&plan, "SELECT " OM_SCHEMA ".citus_purge_events($1)", 1, types),
						 values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not purge the event log");
	deleted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	OmSpiEnd(&saved);
	return isnull ? 0 : deleted;
}

/*
 * purge_shard(shard regclass, cutoff timestamptz, any_position boolean,
 * groups int[], txs xid8[], seqs bigint[]) -> bigint: on Citus, the
 * DELETE of purge_events on one placement of the log, run there by
 * citus_purge_events: events older than cutoff whose group's slowest
 * cursor (groups[i]: (txs[i], seqs[i])) is at or past them, or all of them
 * (any_position: no consumer).  Only for a placement of order_mgmt.events.
 */
PG_FUNCTION_INFO_V1(purge_shard);
Datum
purge_shard(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"shard", "cutoff", "any_position", "groups", "txs", "seqs"};
	PurgeState	st = {0};
	Oid			shard;
	Relation	rel;
	OmSavedUser saved;
	uint64		deleted;
	Datum	   *d[3];
	bool	   *n[3];
	int			len[3];
	Oid			elemtypes[3] = {INT4OID, XID8OID, INT8OID};

	OmRequireArgs(fcinfo, names, 6);
	shard = PG_GETARG_OID(0);
	RequireEventsShard(shard);
	st.cutoff = PG_GETARG_TIMESTAMPTZ(1);
	st.any_position = PG_GETARG_BOOL(2);
	for (int i = 0; i < 3; i++)
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(3 + i);

		st.arrays[i] = PointerGetDatum(arr);
	}
	for (int i = 0; i < 3; i++)
	{
		ArrayType  *arr = DatumGetArrayTypeP(st.arrays[i]);
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(elemtypes[i], &typlen, &typbyval, &typalign);
		deconstruct_array(arr, elemtypes[i], typlen, typbyval, typalign, &d[i], &n[i], &len[i]);
	}
	if (len[0] != len[1] || len[0] != len[2])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("groups, txs and seqs must have the same length")));
	st.ngroups = len[0];
	st.groups = palloc(sizeof(int32) * Max(st.ngroups, 1));
	st.txs = palloc(sizeof(FullTransactionId) * Max(st.ngroups, 1));
	st.seqs = palloc(sizeof(int64) * Max(st.ngroups, 1));
	for (int i = 0; i < st.ngroups; i++)
	{
		if (n[0][i] || n[1][i] || n[2][i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("groups, txs and seqs must not contain nulls")));
		st.groups[i] = DatumGetInt32(d[0][i]);
		st.txs[i] = DatumGetFullTransactionId(d[1][i]);
		st.seqs[i] = DatumGetInt64(d[2][i]);
	}
	if (st.ngroups == 0 && !st.any_position)
		PG_RETURN_INT64(0);		/* no cursor anywhere: nothing is acknowledged */
	st.active = true;
	rel = table_open(shard, RowExclusiveLock);
	st.relid = RelationGetRelid(rel);
	st.tx_att = EventsColumn(rel, "tx");
	st.seq_att = EventsColumn(rel, "seq");
	st.at_att = EventsColumn(rel, "occurred_at");
	table_close(rel, NoLock);
	OmSpiBegin(st.relid, &saved);
	deleted = DeletePurgeable(&st, quote_qualified_identifier(get_namespace_name(get_rel_namespace(shard)),
															 get_rel_name(shard)));
	OmSpiEnd(&saved);
	PG_RETURN_INT64((int64) deleted);
}
