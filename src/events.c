/*
 * events.c
 *		The append-only event log: one row per step of an order, plus its
 *		NOTIFY on channel order_mgmt_events (queued now, sent at commit).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "order_mgmt.h"

#define OM_CHANNEL "order_mgmt_events"
#define EVENT_NARGS 10

/* INSERT ... RETURNING, prepared once per backend (SPI_keepplan). */
static SPIPlanPtr insert_plan = NULL;

static SPIPlanPtr
InsertPlan(void)
{
	static Oid	argtypes[EVENT_NARGS] = {INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID, BOOLOID, TEXTOID, JSONBOID};
	SPIPlanPtr	plan;

	if (insert_plan != NULL)
		return insert_plan;
	plan = SPI_prepare("INSERT INTO " OM_SCHEMA ".events (order_id, entity, entity_id,"
					   " event_type, from_status, to_status, actor, automated, reason, payload)"
					   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
					   " RETURNING seq, event_id::pg_catalog.text",
					   EVENT_NARGS, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for the event insert: %s",
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	insert_plan = plan;
	return plan;
}

/* order_mgmt.actor when set, else the session user. */
static char *
CurrentActor(void)
{
	if (om_actor != NULL && om_actor[0] != '\0')
		return om_actor;
	return GetUserNameFromId(GetSessionUserId(), false);
}

static inline Datum
TextOrNull(const char *s, char *nulls, int i)
{
	if (s == NULL)
	{
		nulls[i] = 'n';
		return (Datum) 0;
	}
	return CStringGetTextDatum(s);
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
 * Queue the compact NOTIFY payload.  Every field is bounded (statuses are
 * shorter than 64 bytes, event types are checked below), so the payload
 * stays far below the 8000-byte limit of NOTIFY.
 */
static void
QueueNotify(const OmEvent *ev, int64 seq, const char *event_id)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"event_id\":");
	escape_json(&buf, event_id);
	appendStringInfo(&buf, ",\"seq\":" INT64_FORMAT ",\"order_id\":" INT64_FORMAT,
					 seq, ev->order_id);
	AppendJsonField(&buf, "event_type", ev->event_type);
	AppendJsonField(&buf, "from", ev->from_status);
	AppendJsonField(&buf, "to", ev->to_status);
	appendStringInfoChar(&buf, '}');
	Async_Notify(OM_CHANNEL, buf.data);
	pfree(buf.data);
}

/*
 * Append one event row as the owner of the event log; returns its seq.
 * Callers may or may not be inside SPI already (SPI_connect nests).
 */
int64
EmitEvent(const OmEvent *ev)
{
	Datum		values[EVENT_NARGS];
	char		nulls[EVENT_NARGS + 1];
	const char *reason = ev->reason;
	OmSavedUser saved;
	MemoryContext caller = CurrentMemoryContext;
	int64		seq;
	char	   *event_id;
	bool		isnull;

	memset(nulls, ' ', EVENT_NARGS);
	nulls[EVENT_NARGS] = '\0';
	if (reason == NULL && om_reason != NULL && om_reason[0] != '\0')
		reason = om_reason;

	values[0] = Int64GetDatum(ev->order_id);
	values[1] = CStringGetTextDatum(ev->entity);
	values[2] = Int64GetDatum(ev->entity_id);
	values[3] = CStringGetTextDatum(ev->event_type);
	values[4] = TextOrNull(ev->from_status, nulls, 4);
	values[5] = TextOrNull(ev->to_status, nulls, 5);
	values[6] = CStringGetTextDatum(CurrentActor());
	values[7] = BoolGetDatum(om_automated);
	values[8] = TextOrNull(reason, nulls, 8);
	values[9] = PointerGetDatum(ev->payload);
	if (ev->payload == NULL)
		nulls[9] = 'n';

	OmBecomeOwner(OmRelid("events"), &saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(InsertPlan(), values, nulls, false, 1) != SPI_OK_INSERT_RETURNING
		|| SPI_processed != 1)
		elog(ERROR, "event insert failed");
	seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	/* copy out of the SPI context before SPI_finish frees it */
	event_id = MemoryContextStrdup(caller,
								   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	SPI_finish();
	OmRestoreUser(&saved);

	if (om_notify_mode == OM_NOTIFY_COMMIT)
		QueueNotify(ev, seq, event_id);
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

/* BEFORE UPDATE/DELETE/TRUNCATE on events: the log is append-only. */
PG_FUNCTION_INFO_V1(events_append_only);
Datum
events_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "events_append_only: not called by trigger manager");
	ereport(ERROR,
			(errcode(ERRCODE_OM_APPEND_ONLY),
			 errmsg("the event log %s.events is append-only", OM_SCHEMA),
			 errdetail("%s is not allowed on it.",
					   TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE" :
					   TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "TRUNCATE")));
	return PointerGetDatum(NULL);
}
