/*
 * process_dfg.c
 *		The directly-follows graph's histogram in two aggregates (issue 13,
 *		schema 0.13.0): case_trace(activity, occurred_at, seq) puts one
 *		case's steps in order, dfg_bins(trace) sums the traces of all cases
 *		into the bins process_dfg reads.
 *
 * Up to 0.12.0 process_dfg numbered every step of the log with window
 * functions over process_steps (one process, every step in case order),
 * then grouped the 18 million steps of a million orders by (activity,
 * next activity, bin): 6x a scan of the log.  Now each case's steps are
 * read by its key and ordered here, and the bins are summed in one hash
 * table of a few thousand entries.
 *
 * A trace (bytea) is the case's steps in process_steps' order (occurred_at,
 * then seq): int32 n, then per step int64 occurred_at and the activity as
 * int32 length and bytes.  dfg_bins checks every length it reads, so a
 * bytea that is not a trace is an error, never a read out of bounds.
 *
 * A bin is what process_dfg's SQL computed until 0.12.0, exactly:
 * the seconds since the step before as date_part('epoch', interval) gives
 * them (the interval's days and time apart), bin = floor(ln(1 + seconds) /
 * ln(1.01)); a case's first step is the edge from no activity, with no bin
 * and no seconds.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "order_mgmt.h"

/* ln(1.01) as SQL computes it (numeric, then float8): libm's log(1.01) is
 * one unit in the last place above it, which would move bin boundaries */
#define LN_1_01 0.009950330853168083

/* ---------------------------------------------------------------------
 * case_trace: one case's steps
 * --------------------------------------------------------------------- */
typedef struct TraceStep
{
	TimestampTz at;
	int64		seq;
	text	   *activity;		/* a copy in the aggregate's memory */
} TraceStep;

typedef struct CaseTrace
{
	int32		n;
	int32		max;
	TraceStep  *steps;
} CaseTrace;

static CaseTrace *
NewTrace(MemoryContext cxt)
{
	CaseTrace  *t = MemoryContextAllocZero(cxt, sizeof(CaseTrace));

	t->max = 16;
	t->steps = MemoryContextAlloc(cxt, t->max * sizeof(TraceStep));
	return t;
}

static void
AddTraceStep(MemoryContext cxt, CaseTrace *t, TimestampTz at, int64 seq,
			 const char *activity, int len)
{
	text	   *copy;

	if (t->n == t->max)
	{
		if (t->max >= (int32) (MaxAllocSize / sizeof(TraceStep) / 2))
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("too many steps in one case for case_trace")));
		t->max *= 2;
		t->steps = repalloc(t->steps, t->max * sizeof(TraceStep));
	}
	copy = MemoryContextAlloc(cxt, VARHDRSZ + len);
	SET_VARSIZE(copy, VARHDRSZ + len);
	memcpy(VARDATA(copy), activity, len);
	t->steps[t->n].at = at;
	t->steps[t->n].seq = seq;
	t->steps[t->n].activity = copy;
	t->n++;
}

/* case_trace_step(state, activity, occurred_at, seq): nulls are no step */
PG_FUNCTION_INFO_V1(case_trace_step);
Datum
case_trace_step(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "case_trace_step");
	CaseTrace  *t = PG_ARGISNULL(0) ? NewTrace(cxt) : (CaseTrace *) PG_GETARG_POINTER(0);
	text	   *activity;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_POINTER(t);
	activity = PG_GETARG_TEXT_PP(1);
	AddTraceStep(cxt, t, PG_GETARG_TIMESTAMPTZ(2), PG_GETARG_INT64(3),
				 VARDATA_ANY(activity), VARSIZE_ANY_EXHDR(activity));
	PG_RETURN_POINTER(t);
}

/* case_trace_combine(a, b): both partial states in one. */
PG_FUNCTION_INFO_V1(case_trace_combine);
Datum
case_trace_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "case_trace_combine");
	CaseTrace  *a;
	CaseTrace  *b;

	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0));
	b = (CaseTrace *) PG_GETARG_POINTER(1);
	a = PG_ARGISNULL(0) ? NewTrace(cxt) : (CaseTrace *) PG_GETARG_POINTER(0);
	for (int i = 0; i < b->n; i++)
		AddTraceStep(cxt, a, b->steps[i].at, b->steps[i].seq,
					 VARDATA(b->steps[i].activity), VARSIZE(b->steps[i].activity) - VARHDRSZ);
	PG_RETURN_POINTER(a);
}

/* case_trace_serialize(state) -> bytea, and back, for parallel workers. */
PG_FUNCTION_INFO_V1(case_trace_serialize);
Datum
case_trace_serialize(PG_FUNCTION_ARGS)
{
	CaseTrace  *t;
	StringInfoData buf;

	(void) OmAggMemory(fcinfo, "case_trace_serialize");
	t = (CaseTrace *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendint32(&buf, t->n);
	for (int i = 0; i < t->n; i++)
	{
		int			len = VARSIZE(t->steps[i].activity) - VARHDRSZ;

		pq_sendint64(&buf, t->steps[i].at);
		pq_sendint64(&buf, t->steps[i].seq);
		pq_sendint32(&buf, len);
		pq_sendbytes(&buf, VARDATA(t->steps[i].activity), len);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* a length read from a buffer: within what is left of it */
static int
GetLength(StringInfo buf)
{
	int			len = pq_getmsgint(buf, 4);

	if (len < 0 || len > buf->len - buf->cursor)
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("not a case trace: a length runs past its end")));
	return len;
}

PG_FUNCTION_INFO_V1(case_trace_deserialize);
Datum
case_trace_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "case_trace_deserialize");
	StringInfoData buf;
	CaseTrace  *t = NewTrace(cxt);
	int32		n;

	OmBytesReader(&buf, PG_GETARG_BYTEA_PP(0));
	n = pq_getmsgint(&buf, 4);
	for (int i = 0; i < n; i++)
	{
		TimestampTz at = pq_getmsgint64(&buf);
		int64		seq = pq_getmsgint64(&buf);
		int			len = GetLength(&buf);

		AddTraceStep(cxt, t, at, seq, pq_getmsgbytes(&buf, len), len);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(t);
}

/* process_steps' order: occurred_at, then seq (unique in the log) */
static int
CompareTraceSteps(const void *a, const void *b)
{
	const TraceStep *x = a;
	const TraceStep *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/* case_trace_final(state) -> bytea: the trace, null for no step */
PG_FUNCTION_INFO_V1(case_trace_final);
Datum
case_trace_final(PG_FUNCTION_ARGS)
{
	CaseTrace  *t;
	StringInfoData buf;

	(void) OmAggMemory(fcinfo, "case_trace_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = (CaseTrace *) PG_GETARG_POINTER(0);
	if (t->n == 0)
		PG_RETURN_NULL();
	/* (the same steps in another order: FINALFUNC_MODIFY READ_ONLY holds) */
	qsort(t->steps, t->n, sizeof(TraceStep), CompareTraceSteps);
	pq_begintypsend(&buf);
	pq_sendint32(&buf, t->n);
	for (int i = 0; i < t->n; i++)
	{
		int			len = VARSIZE(t->steps[i].activity) - VARHDRSZ;

		pq_sendint64(&buf, t->steps[i].at);
		pq_sendint32(&buf, len);
		pq_sendbytes(&buf, VARDATA(t->steps[i].activity), len);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* ---------------------------------------------------------------------
 * dfg_bins: the traces of all cases summed per (activity, next, bin)
 * --------------------------------------------------------------------- */
#define NO_ACTIVITY (-1)

/* activities are interned: a few dozen names, each given a number */
typedef struct ActivityEntry
{
	uint64		hash;			/* key */
	int32		id;
} ActivityEntry;

typedef struct BinKey
{
	int32		from;			/* NO_ACTIVITY: the case starts */
	int32		to;
	int32		bin;			/* (unused when !has_bin) */
	bool		has_bin;
} BinKey;

typedef struct BinEntry
{
	BinKey		key;
	int64		n;
	double		secs;
} BinEntry;

typedef struct DfgState
{
	MemoryContext cxt;
	HTAB	   *activities;
	HTAB	   *bins;
	text	  **names;			/* by id */
	int32		nnames;
	int32		maxnames;
} DfgState;

static DfgState *
NewDfg(MemoryContext cxt)
{
	DfgState   *s = MemoryContextAllocZero(cxt, sizeof(DfgState));
	HASHCTL		ctl;

	s->cxt = cxt;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(ActivityEntry);
	ctl.hcxt = cxt;
	s->activities = hash_create("dfg_bins activities", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(BinKey);
	ctl.entrysize = sizeof(BinEntry);
	ctl.hcxt = cxt;
	s->bins = hash_create("dfg_bins bins", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	s->maxnames = 64;
	s->names = MemoryContextAlloc(cxt, s->maxnames * sizeof(text *));
	return s;
}

/*
 * The number of an activity.  Names are told apart by a 64-bit hash; two
 * names with one hash (never seen: below 10^-15 for a thousand names) are
 * an error, not a merge.
 */
static int32
ActivityId(DfgState *s, const char *name, int len)
{
	uint64		h = hash_bytes_extended((const unsigned char *) name, len, 0);
	bool		found;
	ActivityEntry *e = hash_search(s->activities, &h, HASH_ENTER, &found);

	if (found)
	{
		text	   *known = s->names[e->id];

		if (VARSIZE(known) - VARHDRSZ != (Size) len || memcmp(VARDATA(known), name, len) != 0)
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
							errmsg("two activities share a hash in dfg_bins")));
		return e->id;
	}
	if (s->nnames == s->maxnames)
	{
		if (s->maxnames >= (int32) (MaxAllocSize / sizeof(text *) / 2))
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("too many activities for dfg_bins")));
		s->maxnames *= 2;
		s->names = repalloc(s->names, s->maxnames * sizeof(text *));
	}
	s->names[s->nnames] = (text *) MemoryContextAlloc(s->cxt, VARHDRSZ + len);
	SET_VARSIZE(s->names[s->nnames], VARHDRSZ + len);
	memcpy(VARDATA(s->names[s->nnames]), name, len);
	e->id = s->nnames++;
	return e->id;
}

static void
CountEdge(DfgState *s, int32 from, int32 to, bool has_gap, double secs)
{
	BinKey		key;
	BinEntry   *e;
	bool		found;

	memset(&key, 0, sizeof(key));	/* (padding: the key is hashed as bytes) */
	key.from = from;
	key.to = to;
	key.has_bin = has_gap;
	if (has_gap)
		key.bin = (int32) floor(log(1 + secs) / LN_1_01);
	e = hash_search(s->bins, &key, HASH_ENTER, &found);
	if (!found)
	{
		e->n = 0;
		e->secs = 0;
	}
	e->n++;
	if (has_gap)
		e->secs += secs;
}

/* the seconds of a gap as date_part('epoch', interval) gives them */
static double
GapSeconds(TimestampTz from, TimestampTz to)
{
	int64		usecs;
	int64		days;

	if (pg_sub_s64_overflow(to, from, &usecs))
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						errmsg("interval out of range in dfg_bins")));
	days = usecs / USECS_PER_DAY;

	return (usecs - days * USECS_PER_DAY) / 1000000.0 + (double) SECS_PER_DAY * days;
}

/* dfg_bins_step(state, trace) */
PG_FUNCTION_INFO_V1(dfg_bins_step);
Datum
dfg_bins_step(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "dfg_bins_step");
	DfgState   *s = PG_ARGISNULL(0) ? NewDfg(cxt) : (DfgState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	int32		n;
	int32		prev = NO_ACTIVITY;
	TimestampTz prev_at = 0;

	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(s);
	OmBytesReader(&buf, PG_GETARG_BYTEA_PP(1));
	n = pq_getmsgint(&buf, 4);
	if (n < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("not a case trace: a negative number of steps")));
	for (int i = 0; i < n; i++)
	{
		TimestampTz at = pq_getmsgint64(&buf);
		int			len = GetLength(&buf);
		int32		id = ActivityId(s, pq_getmsgbytes(&buf, len), len);

		if (i > 0 && at < prev_at)
			ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
							errmsg("not a case trace: its steps are out of order")));
		CountEdge(s, prev, id, i > 0, i > 0 ? GapSeconds(prev_at, at) : 0);
		prev = id;
		prev_at = at;
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(s);
}

/* dfg_bins_final(state) -> dfg_bin[]: one element per (activity, next, bin) */
PG_FUNCTION_INFO_V1(dfg_bins_final);
Datum
dfg_bins_final(PG_FUNCTION_ARGS)
{
	DfgState   *s;
	Oid			elemtype;
	TupleDesc	desc;
	HASH_SEQ_STATUS it;
	BinEntry   *e;
	Datum	   *elems;
	int			n = 0;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	(void) OmAggMemory(fcinfo, "dfg_bins_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = (DfgState *) PG_GETARG_POINTER(0);
	elemtype = get_element_type(get_fn_expr_rettype(fcinfo->flinfo));
	if (!OidIsValid(elemtype))
		elog(ERROR, "dfg_bins_final must return an array");
	desc = lookup_rowtype_tupdesc_copy(elemtype, -1);
	elems = palloc(Max(hash_get_num_entries(s->bins), 1) * sizeof(Datum));
	hash_seq_init(&it, s->bins);
	while ((e = hash_seq_search(&it)) != NULL)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = PointerGetDatum(e->key.from == NO_ACTIVITY ? NULL : s->names[e->key.from]);
		nulls[0] = e->key.from == NO_ACTIVITY;
		values[1] = PointerGetDatum(s->names[e->key.to]);
		values[2] = Float8GetDatum((double) e->key.bin);
		nulls[2] = !e->key.has_bin;
		values[3] = Int64GetDatum(e->n);
		values[4] = Float8GetDatum(e->secs);
		nulls[4] = !e->key.has_bin;
		elems[n++] = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
	}
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, elemtype, typlen, typbyval, typalign));
}
