/*
 * events.c
 *		The append-only event log: one row per step of an order, plus its
 *		NOTIFY on channel order_mgmt_events (queued now, sent at commit; or,
 *		in notify_mode = relay, sent by the relay worker, relay.c).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/rel.h"
#include "utils/lsyscache.h"
#include "utils/uuid.h"
#include "utils/xid8.h"
#include "catalog/namespace.h"

#include "order_mgmt.h"

/*
 * The columns an event supplies, by name; every other column of the table
 * (seq, tx, event_id, occurred_at, and any a DBA adds) takes its default.
 * db_role arrived with 0.4.0: an older schema simply has no place for it.
 */
static const char *const event_columns[] = {
	"order_id", "entity", "entity_id", "event_type", "from_status", "to_status",
	"actor", "automated", "reason", "payload", "db_role"
};
#define EVENT_NCOLS lengthof(event_columns)
#define EVENT_OPTIONAL_FROM 10	/* columns from here on may be missing */

/*
 * How to build a row of order_mgmt.events, cached per backend (cache.c).
 * Rows are inserted directly (as logical replication's apply does), not
 * through SPI: a planned INSERT per event costs an executor start and end,
 * which is most of the price of a status change.  Constraints, indexes and
 * any triggers on the table still apply.  A relcache invalidation of the
 * table (ALTER TABLE, a new default) makes the layout stale.
 */
typedef struct EventTable
{
	Oid			relid;
	AttrNumber	att[EVENT_NCOLS];	/* where each supplied column goes; 0: none */
	AttrNumber	seq_att;
	AttrNumber	id_att;
	int			natts;
	ExprState **defaults;		/* per attribute; NULL: no default */
	ExprContext *econtext;		/* evaluates the defaults */
} EventTable;

static OmCache event_cache = {
	.name = "order_mgmt event log layout",
	.ntables = 1,
	.tables = {"events"},
};
static Relation loading_rel;	/* the relation LoadEventTable describes */

static AttrNumber
EventColumn(Relation rel, const char *name, bool required)
{
	AttrNumber	att = SPI_fnumber(RelationGetDescr(rel), name);

	if (att <= 0 && required)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s.events\" does not exist", name, OM_SCHEMA),
				 errhint("The event log needs the columns of the order_mgmt schema version installed.")));
	return Max(att, 0);
}

/* Prepare the default of every column the event does not supply. */
static void
PrepareDefaults(EventTable *t, Relation rel)
{
	bool	   *supplied = palloc0(sizeof(bool) * t->natts);

	t->defaults = palloc0(sizeof(ExprState *) * t->natts);
	for (int i = 0; i < (int) EVENT_NCOLS; i++)
		if (t->att[i] > 0)
			supplied[t->att[i] - 1] = true;
	for (int i = 0; i < t->natts; i++)
	{
		Node	   *expr;

		if (supplied[i] || TupleDescAttr(RelationGetDescr(rel), i)->attisdropped)
			continue;
		expr = build_column_default(rel, i + 1);
		if (expr != NULL)
			t->defaults[i] = ExecInitExpr(expression_planner((Expr *) expr), NULL);
	}
}

static void *
LoadEventTable(MemoryContext cxt)
{
	Relation	rel = loading_rel;
	EventTable *t = palloc0(sizeof(EventTable));

	t->relid = RelationGetRelid(rel);
	t->natts = RelationGetDescr(rel)->natts;
	for (int i = 0; i < (int) EVENT_NCOLS; i++)
		t->att[i] = EventColumn(rel, event_columns[i], i < EVENT_OPTIONAL_FROM);
	t->seq_att = EventColumn(rel, "seq", true);
	t->id_att = EventColumn(rel, "event_id", true);
	PrepareDefaults(t, rel);
	t->econtext = CreateStandaloneExprContext();
	return t;
}

/* The layout of the (locked) event log; rebuilt when it was invalidated. */
static EventTable *
GetEventTable(Relation rel)
{
	EventTable *t = event_cache.data;

	if (OmCacheValid(&event_cache) && t->relid == RelationGetRelid(rel))
		return t;
	loading_rel = rel;
	return OmCacheRebuild(&event_cache, LoadEventTable);
}

/*
 * Build the row: the supplied values and the defaults of the other columns.
 * The slot is materialized, so it owns its data: triggers on the log that
 * emit events themselves (re-entering here) cannot pull it away.
 */
static TupleTableSlot *
BuildEventRow(EventTable *t, Relation rel, EState *estate, Datum *values, bool *nulls)
{
	TupleTableSlot *slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsVirtual);

	ExecClearTuple(slot);
	for (int i = 0; i < t->natts; i++)
	{
		slot->tts_isnull[i] = true;
		if (t->defaults[i] != NULL)
			slot->tts_values[i] = ExecEvalExprSwitchContext(t->defaults[i], t->econtext,
															&slot->tts_isnull[i]);
	}
	for (int i = 0; i < (int) EVENT_NCOLS; i++)
	{
		if (t->att[i] == 0)
			continue;
		slot->tts_values[t->att[i] - 1] = values[i];
		slot->tts_isnull[t->att[i] - 1] = nulls[i];
	}
	ExecStoreVirtualTuple(slot);
	ExecMaterializeSlot(slot);
	ResetExprContext(t->econtext);
	if (slot->tts_isnull[t->seq_att - 1] || slot->tts_isnull[t->id_att - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("an event needs a seq and an event_id"),
				 errhint("Keep the defaults of %s.events.seq and event_id.", OM_SCHEMA)));
	return slot;
}

/*
 * Insert the row with the table's constraints, indexes and triggers.  The
 * caller holds RowExclusiveLock on rel, so its layout cannot change under
 * us (ALTER TABLE waits).
 */
static void
InsertEventRow(Relation rel, EState *estate, TupleTableSlot *slot)
{
	ResultRelInfo *rri = makeNode(ResultRelInfo);

	InitResultRelInfo(rri, rel, 0, NULL, 0);
	ExecOpenIndices(rri, false);
	estate->es_output_cid = GetCurrentCommandId(true);
	AfterTriggerBeginQuery();
	ExecSimpleRelationInsert(rri, estate, slot);
	AfterTriggerEndQuery(estate);
	ExecCloseIndices(rri);
	ExecCloseResultRelations(estate);	/* those the AFTER triggers opened */
}

static inline Datum
TextOrNull(const char *s, bool *isnull)
{
	*isnull = s == NULL;
	return s == NULL ? (Datum) 0 : CStringGetTextDatum(s);
}

/* Append a JSON string or null to the NOTIFY payload. */
static void
AppendJsonField(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, ",\"%s\":", key);
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

/*
 * The compact NOTIFY payload of an event, shared by the writer (commit mode)
 * and the relay worker (relay mode) so both send exactly the same text.
 * Every field is bounded (statuses are shorter than 64 bytes, event types are
 * checked below), so the payload stays far below the 8000-byte limit of
 * NOTIFY.
 */
void
OmAppendNotifyPayload(StringInfo buf, const char *event_id, int64 seq, int64 order_id,
					  const char *event_type, const char *from_status, const char *to_status)
{
	appendStringInfoString(buf, "{\"event_id\":");
	escape_json(buf, event_id);
	appendStringInfo(buf, ",\"seq\":" INT64_FORMAT ",\"order_id\":" INT64_FORMAT,
					 seq, order_id);
	AppendJsonField(buf, "event_type", event_type);
	AppendJsonField(buf, "from", from_status);
	AppendJsonField(buf, "to", to_status);
	appendStringInfoChar(buf, '}');
}

/* Queue the NOTIFY of an event written by this transaction (commit mode). */
static void
QueueNotify(const OmEvent *ev, int64 seq, const char *event_id)
{
	StringInfoData buf;

	initStringInfo(&buf);
	OmAppendNotifyPayload(&buf, event_id, seq, ev->order_id, ev->event_type,
						  ev->from_status, ev->to_status);
	Async_Notify(OM_CHANNEL, buf.data);
	pfree(buf.data);
}

/*
 * On Citus: insert the row through the distributed planner, which routes
 * it to the events shard of its order (a local task on the worker that
 * runs the trigger; from the coordinator, a remote one).  seq and tx are
 * stamped on the shard (events_stamp): the storing node's sequence range
 * and transaction id, which the consumers' cursor needs.  Returns seq and
 * the event_id.
 */
static int64
InsertRoutedEvent(Datum *values, bool *nulls, char **event_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[EVENT_NCOLS] = {INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, BOOLOID, TEXTOID, JSONBOID, TEXTOID};
	char		n[EVENT_NCOLS];
	OmSavedUser saved;
	bool		isnull;
	int64		seq;
	char	   *id;

	for (int i = 0; i < (int) EVENT_NCOLS; i++)
		n[i] = nulls[i] ? 'n' : ' ';
	OmSpiBegin(OmRelid("events"), &saved);
	if (SPI_execute_plan(OmKeepPlan(&plan, "INSERT INTO " OM_SCHEMA ".events"
									" (seq, tx, order_id, entity, entity_id, event_type, from_status,"
									" to_status, actor, automated, reason, payload, db_role)"
									" VALUES (0, '0', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
									" RETURNING seq, event_id::pg_catalog.text",
									EVENT_NCOLS, argtypes),
						 values, n, false, 1) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not write an event");
	seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	*event_id = SPI_palloc(strlen(id) + 1);	/* in the caller's context */
	strcpy(*event_id, id);
	OmSpiEnd(&saved);
	return seq;
}

/*
 * Append one event row as the owner of the event log (so a role allowed to
 * UPDATE orders needs no privilege on the log or its sequence); returns its
 * seq and queues the NOTIFY.
 */
int64
EmitEvent(const OmEvent *ev)
{
	Datum		values[EVENT_NCOLS];
	bool		nulls[EVENT_NCOLS] = {0};
	const char *reason = ev->reason;
	OmSavedUser saved;
	Relation	rel;
	EventTable *t;
	TupleTableSlot *slot;
	EState	   *estate;
	int64		seq;
	char	   *event_id;

	if (reason == NULL && om_reason != NULL && om_reason[0] != '\0')
		reason = om_reason;
	values[0] = Int64GetDatum(ev->order_id);
	values[1] = CStringGetTextDatum(ev->entity);
	values[2] = Int64GetDatum(ev->entity_id);
	values[3] = CStringGetTextDatum(ev->event_type);
	values[4] = TextOrNull(ev->from_status, &nulls[4]);
	values[5] = TextOrNull(ev->to_status, &nulls[5]);
	values[6] = CStringGetTextDatum(OmCurrentActor());
	values[7] = BoolGetDatum(om_automated);
	values[8] = TextOrNull(reason, &nulls[8]);
	values[9] = PointerGetDatum(ev->payload);
	nulls[9] = ev->payload == NULL;
	values[10] = CStringGetTextDatum(OmDbRole());

	/*
	 * Citus: never a NOTIFY in the writer (a transaction prepared for
	 * two-phase commit cannot have one, and a worker's would reach only its
	 * own listeners); the relay worker on the coordinator announces it.
	 */
	if (OmCitusActive())
	{
		seq = InsertRoutedEvent(values, nulls, &event_id);
		OmRelayWakeAtCommit();
		pfree(event_id);
		return seq;
	}

	rel = table_open(OmRelid("events"), RowExclusiveLock);
	t = GetEventTable(rel);
	estate = CreateExecutorState();
	OmBecomeOwner(t->relid, &saved);	/* nextval() needs the owner's rights */
	slot = BuildEventRow(t, rel, estate, values, nulls);
	seq = DatumGetInt64(slot->tts_values[t->seq_att - 1]);
	event_id = DatumGetCString(DirectFunctionCall1(uuid_out, slot->tts_values[t->id_att - 1]));
	InsertEventRow(rel, estate, slot);	/* t may be rebuilt from here on */
	OmRestoreUser(&saved);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(rel, NoLock);

	if (om_notify_mode == OM_NOTIFY_COMMIT)
		QueueNotify(ev, seq, event_id);
	else if (om_notify_mode == OM_NOTIFY_RELAY)
		OmRelayEventWritten();	/* no NOTIFY here: wake the relay at commit */
	pfree(event_id);
	return seq;
}

static const char *
TextArgOrNull(FunctionCallInfo fcinfo, int i)
{
	return PG_ARGISNULL(i) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(i));
}

/* Reject event types that are not short dotted lower-case names. */
static void
CheckEventType(const char *t)
{
	size_t		len = strlen(t);
	bool		ok = len > 0 && len < 64 && strchr(t, '.') != NULL;

	for (const char *p = t; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || *p == '_' || *p == '.';
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event type \"%s\"", t),
				 errdetail("An event type is entity.activity in lower case, shorter than 64 bytes.")));
}

/*
 * emit_event(order_id, entity, entity_id, event_type, from_status, to_status,
 *			  reason, payload) -> seq: an event that is not a status change.
 */
PG_FUNCTION_INFO_V1(emit_event);
Datum
emit_event(PG_FUNCTION_ARGS)
{
	OmEvent		ev;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("order_id, entity, entity_id and event_type must not be null")));
	ev.order_id = PG_GETARG_INT64(0);
	ev.entity = text_to_cstring(PG_GETARG_TEXT_PP(1));
	ev.entity_id = PG_GETARG_INT64(2);
	ev.event_type = text_to_cstring(PG_GETARG_TEXT_PP(3));
	ev.from_status = TextArgOrNull(fcinfo, 4);
	ev.to_status = TextArgOrNull(fcinfo, 5);
	ev.reason = TextArgOrNull(fcinfo, 6);
	ev.payload = PG_ARGISNULL(7) ? NULL : PG_GETARG_JSONB_P(7);
	CheckEventType(ev.event_type);
	if ((ev.from_status && strlen(ev.from_status) >= 64) ||
		(ev.to_status && strlen(ev.to_status) >= 64))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("status names must be shorter than 64 bytes")));
	PG_RETURN_INT64(EmitEvent(&ev));
}

/*
 * BEFORE UPDATE/DELETE/TRUNCATE on events: the log is append-only.  The one
 * exception is a row that purge_events, running in this backend, is
 * deleting (stream.c decides).
 */
PG_FUNCTION_INFO_V1(events_append_only);
Datum
events_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "events_append_only: not called by trigger manager");
	if (OmPurgeAllowsDelete(trigdata))
		return PointerGetDatum(trigdata->tg_trigtuple);
	ereport(ERROR,
			(errcode(ERRCODE_OM_APPEND_ONLY),
			 errmsg("the event log %s.events is append-only", OM_SCHEMA),
			 errdetail("%s is not allowed on it.",
					   TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE" :
					   TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "TRUNCATE")));
	return PointerGetDatum(NULL);
}

/*
 * events_stamp(): BEFORE INSERT FOR EACH ROW on events, created by
 * distribute() on Citus only.  It runs on the shard, on the node that
 * stores the row: tx becomes that node's transaction id and seq the next
 * value of that node's events_seq_seq, whose range (distribute() gives
 * every node group its own) names the node group that wrote it.  A row
 * inserted through the coordinator would otherwise carry the
 * coordinator's transaction id and sequence.
 */
PG_FUNCTION_INFO_V1(events_stamp);
Datum
events_stamp(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	int			atts[2];
	Datum		values[2];
	bool		nulls[2] = {false, false};
	Oid			seqrel;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		elog(ERROR, "events_stamp must be a BEFORE INSERT row trigger");
	desc = RelationGetDescr(trigdata->tg_relation);
	atts[0] = SPI_fnumber(desc, "tx");
	atts[1] = SPI_fnumber(desc, "seq");
	if (atts[0] <= 0 || atts[1] <= 0)
		elog(ERROR, "%s has no tx or seq column", RelationGetRelationName(trigdata->tg_relation));
	seqrel = get_relname_relid("events_seq_seq", get_namespace_oid(OM_SCHEMA, false));
	if (!OidIsValid(seqrel))
		elog(ERROR, "sequence %s.events_seq_seq does not exist", OM_SCHEMA);
	values[0] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[1] = Int64GetDatum(nextval_internal(seqrel, false));
	return PointerGetDatum(heap_modify_tuple_by_cols(trigdata->tg_trigtuple, desc, 2, atts,
													 values, nulls));
}
