/*
 * bi.c
 *		event_facts(...): the aggregate order_facts reads the event log with,
 *		one pass over an order's events (issue 13).
 *
 * What it computes per order is defined in docs/bi.md ("order_facts") and
 * was, up to 0.9.0, a set of FILTER aggregates, two status_class calls per
 * event, a LIKE ANY per event and a count(DISTINCT) of the rework keys,
 * which sorted every order's keys: most of the view's time on a long log.
 * Here each event costs a few comparisons and at most two cache probes,
 * and the result does not depend on the order the events arrive in, so the
 * aggregate also combines partial states (parallel aggregation).
 *
 *	events		  every event
 *	manual_events not automated, and the actor matches none of the LIKE
 *				  patterns of bi_settings.system_actors (is_manual_event)
 *	confirmed_at  the first order event entering a status of class open
 *	completed_at  the first order event entering a status of class completed
 *	rework_steps  lifecycle steps (an order, shipment or return entering a
 *				  status; moves into or out of a held status are waiting)
 *				  minus the distinct (entity, entity_id, to_status) among
 *				  them: each step that enters a status a second time
 *
 * The distinct steps are counted over 64-bit hashes, as 0.8.0's SQL did: a
 * collision inside one order is below 10^-17.
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "order_mgmt.h"

typedef struct EventFacts
{
	int64		events;
	int64		manual;
	int64		steps;
	TimestampTz confirmed_at;
	TimestampTz completed_at;
	bool		confirmed;
	bool		completed;
	int32		nkeys;
	int32		maxkeys;
	uint64	   *keys;			/* the steps' hashes, in the aggregate's memory */
} EventFacts;

static EventFacts *
NewFacts(MemoryContext cxt)
{
	EventFacts *f = MemoryContextAllocZero(cxt, sizeof(EventFacts));

	f->maxkeys = 16;
	f->keys = MemoryContextAlloc(cxt, f->maxkeys * sizeof(uint64));
	return f;
}

static void
AddKey(EventFacts *f, uint64 key)
{
	if (f->nkeys == f->maxkeys)
	{
		if (f->maxkeys >= (int32) (MaxAllocSize / sizeof(uint64) / 2))
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("too many events in one order for event_facts")));
		f->maxkeys *= 2;
		f->keys = repalloc(f->keys, f->maxkeys * sizeof(uint64));
	}
	f->keys[f->nkeys++] = key;
}

static void
KeepFirst(TimestampTz *at, bool *set, TimestampTz ts)
{
	if (!*set || ts < *at)
	{
		*at = ts;
		*set = true;
	}
}

/*
 * Is an event by actor not manual because of the LIKE patterns?  As in SQL
 * (NOT actor LIKE ANY (patterns)): a match, or no match but a null
 * pattern (the test is then null, not true).
 */
static bool
SystemActor(text *actor, ArrayType *patterns)
{
	Datum	   *elems;
	bool	   *nulls;
	bool		unknown = false;
	int			n;

	if (ArrayGetNItems(ARR_NDIM(patterns), ARR_DIMS(patterns)) == 0)
		return false;
	deconstruct_array(patterns, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			unknown = true;
		else if (DatumGetBool(DirectFunctionCall2Coll(textlike, DEFAULT_COLLATION_OID,
													  PointerGetDatum(actor), elems[i])))
			return true;
	}
	return unknown;
}

/* The memory of an aggregate's state; fn was not called as an aggregate: error. */
MemoryContext
OmAggMemory(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "%s called in non-aggregate context", fn);
	return cxt;
}

/* Read a bytea with pq_getmsg*, which check every read against its length. */
void
OmBytesReader(StringInfo buf, bytea *b)
{
	buf->data = VARDATA_ANY(b);
	buf->len = VARSIZE_ANY_EXHDR(b);
	buf->maxlen = buf->len;
	buf->cursor = 0;
}

/*
 * event_facts_step(state, entity, entity_id, from_status, to_status,
 *					occurred_at, automated, actor, system_actors)
 */
PG_FUNCTION_INFO_V1(event_facts_step);
Datum
event_facts_step(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "event_facts_step");
	EventFacts *f = PG_ARGISNULL(0) ? NewFacts(cxt) : (EventFacts *) PG_GETARG_POINTER(0);
	char	   *entity;
	char	   *to;
	const char *to_class = NULL;
	const char *from_class = NULL;
	bool		is_order;

	f->events++;
	/* (null inputs are not manual, as is_manual_event's null is not true) */
	if (!PG_ARGISNULL(6) && !PG_GETARG_BOOL(6) && !PG_ARGISNULL(7) && !PG_ARGISNULL(8)
		&& !SystemActor(PG_GETARG_TEXT_PP(7), PG_GETARG_ARRAYTYPE_P(8)))
		f->manual++;
	if (PG_ARGISNULL(1) || PG_ARGISNULL(4))
		PG_RETURN_POINTER(f);	/* no status entered: neither a step nor a date */

	entity = text_to_cstring(PG_GETARG_TEXT_PP(1));
	to = text_to_cstring(PG_GETARG_TEXT_PP(4));
	is_order = strcmp(entity, "order") == 0;
	if (is_order)
	{
		to_class = OmStatusClass(entity, to);
		if (!PG_ARGISNULL(3))
			from_class = OmStatusClass(entity, text_to_cstring(PG_GETARG_TEXT_PP(3)));
		if (to_class != NULL && !PG_ARGISNULL(5))
		{
			if (strcmp(to_class, "open") == 0)
				KeepFirst(&f->confirmed_at, &f->confirmed, PG_GETARG_TIMESTAMPTZ(5));
			else if (strcmp(to_class, "completed") == 0)
				KeepFirst(&f->completed_at, &f->completed, PG_GETARG_TIMESTAMPTZ(5));
		}
	}
	if ((is_order || strcmp(entity, "shipment") == 0 || strcmp(entity, "return") == 0)
		&& !(to_class != NULL && strcmp(to_class, "held") == 0)
		&& !(from_class != NULL && strcmp(from_class, "held") == 0)
		&& !PG_ARGISNULL(2))
	{
		char	   *step = psprintf("%s.%s", entity, to);

		f->steps++;
		AddKey(f, hash_bytes_extended((const unsigned char *) step, strlen(step),
									  (uint64) PG_GETARG_INT64(2)));
		pfree(step);
	}
	pfree(entity);
	pfree(to);
	PG_RETURN_POINTER(f);
}

/* event_facts_combine(a, b): both partial states in one (parallel aggregation). */
PG_FUNCTION_INFO_V1(event_facts_combine);
Datum
event_facts_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "event_facts_combine");
	EventFacts *a;
	EventFacts *b;

	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0));
	b = (EventFacts *) PG_GETARG_POINTER(1);
	a = PG_ARGISNULL(0) ? NewFacts(cxt) : (EventFacts *) PG_GETARG_POINTER(0);
	a->events += b->events;
	a->manual += b->manual;
	a->steps += b->steps;
	if (b->confirmed)
		KeepFirst(&a->confirmed_at, &a->confirmed, b->confirmed_at);
	if (b->completed)
		KeepFirst(&a->completed_at, &a->completed, b->completed_at);
	for (int i = 0; i < b->nkeys; i++)
		AddKey(a, b->keys[i]);
	PG_RETURN_POINTER(a);
}

/* event_facts_serialize(state) -> bytea, and back, for parallel workers. */
PG_FUNCTION_INFO_V1(event_facts_serialize);
Datum
event_facts_serialize(PG_FUNCTION_ARGS)
{
	EventFacts *f;
	StringInfoData buf;

	(void) OmAggMemory(fcinfo, "event_facts_serialize");
	f = (EventFacts *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendint64(&buf, f->events);
	pq_sendint64(&buf, f->manual);
	pq_sendint64(&buf, f->steps);
	pq_sendbyte(&buf, f->confirmed);
	pq_sendint64(&buf, f->confirmed_at);
	pq_sendbyte(&buf, f->completed);
	pq_sendint64(&buf, f->completed_at);
	pq_sendint32(&buf, f->nkeys);
	for (int i = 0; i < f->nkeys; i++)
		pq_sendint64(&buf, f->keys[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(event_facts_deserialize);
Datum
event_facts_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "event_facts_deserialize");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	EventFacts *f = NewFacts(cxt);
	int32		n;

	OmBytesReader(&buf, b);
	f->events = pq_getmsgint64(&buf);
	f->manual = pq_getmsgint64(&buf);
	f->steps = pq_getmsgint64(&buf);
	f->confirmed = pq_getmsgbyte(&buf) != 0;
	f->confirmed_at = pq_getmsgint64(&buf);
	f->completed = pq_getmsgbyte(&buf) != 0;
	f->completed_at = pq_getmsgint64(&buf);
	n = pq_getmsgint(&buf, 4);
	for (int i = 0; i < n; i++)
		AddKey(f, (uint64) pq_getmsgint64(&buf));
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(f);
}

static int
CompareKeys(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* event_facts_final(state) -> event_facts */
PG_FUNCTION_INFO_V1(event_facts_final);
Datum
event_facts_final(PG_FUNCTION_ARGS)
{
	EventFacts *f;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	int64		distinct = 0;

	(void) OmAggMemory(fcinfo, "event_facts_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	f = (EventFacts *) PG_GETARG_POINTER(0);
	/* the result's descriptor, looked up once per query (one call per order) */
	desc = (TupleDesc) fcinfo->flinfo->fn_extra;
	if (desc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "event_facts_final must return a composite type");
		desc = BlessTupleDesc(desc);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = desc;
	}
	/*
	 * Sorting the keys in place leaves the same multiset, so the state still
	 * means the same to a later transition or final call (FINALFUNC_MODIFY
	 * READ_ONLY holds).
	 */
	qsort(f->keys, f->nkeys, sizeof(uint64), CompareKeys);
	for (int i = 0; i < f->nkeys; i++)
		if (i == 0 || f->keys[i] != f->keys[i - 1])
			distinct++;
	values[0] = Int64GetDatum(f->events);
	values[1] = Int64GetDatum(f->manual);
	values[2] = TimestampTzGetDatum(f->confirmed_at);
	nulls[2] = !f->confirmed;
	values[3] = TimestampTzGetDatum(f->completed_at);
	nulls[3] = !f->completed;
	values[4] = Int64GetDatum(f->steps - distinct);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
