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
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/fmgrprotos.h"
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
} PurgeState;

static PurgeState purge = {false};

/* Is (tx, seq) at or before the purge horizon? */
static bool
PurgeCovers(FullTransactionId tx, int64 seq)
{
	if (purge.any_position)
		return true;
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

/* Run the DELETE with the trigger's permission set; returns the row count. */
static uint64
DeletePurgeable(const PurgeState *st)
{
	PurgeState	saved = purge;	/* a purge may run inside a trigger of a purge */
	Oid			types[3] = {TIMESTAMPTZOID, XID8OID, INT8OID};
	Datum		values[3];
	int			rc;

	values[0] = TimestampTzGetDatum(st->cutoff);
	values[1] = FullTransactionIdGetDatum(st->tx);
	values[2] = Int64GetDatum(st->seq);
	purge = *st;
	PG_TRY();
	{
		if (st->any_position)
			rc = SPI_execute_with_args("DELETE FROM " OM_SCHEMA ".events"
									   " WHERE occurred_at OPERATOR(pg_catalog.<) $1",
									   1, types, values, NULL, false, 0);
		else
			rc = SPI_execute_with_args("DELETE FROM " OM_SCHEMA ".events"
									   " WHERE occurred_at OPERATOR(pg_catalog.<) $1"
									   " AND (tx, seq) OPERATOR(pg_catalog.<=) ($2, $3)",
									   3, types, values, NULL, false, 0);
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
	deleted = DeletePurgeable(&st);
	OmSpiEnd(&saved);
	PG_RETURN_INT64((int64) deleted);
}
