/*
 * case_path.c
 *		case_path(activity, occurred_at, seq): the path of one case through
 *		the process, for process_variants (issue 13, schema 0.13.0).
 *
 * process_variants groups cases by their sequence of process steps.  Up to
 * 0.12.0 it numbered each case's steps with a window function over
 * process_steps and xor-ed a hash of each activity seeded with its number:
 * a window runs in one process only, over every step of the log in case
 * order, which put the view at 4x a scan of the log.  This aggregate takes
 * each case's steps in any order, keeps (occurred_at, seq, hash of the
 * activity) per step, and in its final call puts them in process_steps'
 * order (occurred_at, then seq) to compute:
 *
 *	steps		  the number of steps
 *	variant_key	  the xor over the steps of the hash of (position, activity):
 *				  equal for two cases with the same sequence of activities,
 *				  different for two different sequences of the same length
 *				  but for a 64-bit collision (below 10^-7 even among a
 *				  million variants); process_variants groups on (steps, key)
 *	hours		  the throughput time, first to last step, in hours
 *
 * The state does not depend on the order its rows arrive in, so partial
 * states combine (parallel aggregation, and Citus runs it on the shards).
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "order_mgmt.h"

typedef struct PathStep
{
	TimestampTz at;
	int64		seq;
	uint64		activity;		/* hash of the activity's bytes */
} PathStep;

typedef struct CasePath
{
	int32		n;
	int32		max;
	PathStep   *steps;			/* in the aggregate's memory */
} CasePath;

static CasePath *
NewPath(MemoryContext cxt)
{
	CasePath   *p = MemoryContextAllocZero(cxt, sizeof(CasePath));

	p->max = 16;
	p->steps = MemoryContextAlloc(cxt, p->max * sizeof(PathStep));
	return p;
}

/* (repalloc keeps the array in the context it was allocated in) */
static void
AddStep(CasePath *p, TimestampTz at, int64 seq, uint64 activity)
{
	if (p->n == p->max)
	{
		if (p->max >= (int32) (MaxAllocSize / sizeof(PathStep) / 2))
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("too many steps in one case for case_path")));
		p->max *= 2;
		p->steps = repalloc(p->steps, p->max * sizeof(PathStep));
	}
	p->steps[p->n].at = at;
	p->steps[p->n].seq = seq;
	p->steps[p->n].activity = activity;
	p->n++;
}

/*
 * case_path_step(state, activity, occurred_at, seq): a row with a null
 * argument is not a step (the log's columns are NOT NULL; a caller's
 * outer join may still pass nulls).
 */
PG_FUNCTION_INFO_V1(case_path_step);
Datum
case_path_step(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "case_path_step");
	CasePath   *p = PG_ARGISNULL(0) ? NewPath(cxt) : (CasePath *) PG_GETARG_POINTER(0);
	text	   *activity;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_POINTER(p);
	activity = PG_GETARG_TEXT_PP(1);
	AddStep(p, PG_GETARG_TIMESTAMPTZ(2), PG_GETARG_INT64(3),
			hash_bytes_extended((const unsigned char *) VARDATA_ANY(activity),
								VARSIZE_ANY_EXHDR(activity), 0));
	PG_RETURN_POINTER(p);
}

/* case_path_combine(a, b): both partial states in one. */
PG_FUNCTION_INFO_V1(case_path_combine);
Datum
case_path_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "case_path_combine");
	CasePath   *a;
	CasePath   *b;

	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0));
	b = (CasePath *) PG_GETARG_POINTER(1);
	a = PG_ARGISNULL(0) ? NewPath(cxt) : (CasePath *) PG_GETARG_POINTER(0);
	for (int i = 0; i < b->n; i++)
		AddStep(a, b->steps[i].at, b->steps[i].seq, b->steps[i].activity);
	PG_RETURN_POINTER(a);
}

/* case_path_serialize(state) -> bytea, and back, for parallel workers. */
PG_FUNCTION_INFO_V1(case_path_serialize);
Datum
case_path_serialize(PG_FUNCTION_ARGS)
{
	CasePath   *p;
	StringInfoData buf;

	(void) OmAggMemory(fcinfo, "case_path_serialize");
	p = (CasePath *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendint32(&buf, p->n);
	for (int i = 0; i < p->n; i++)
	{
		pq_sendint64(&buf, p->steps[i].at);
		pq_sendint64(&buf, p->steps[i].seq);
		pq_sendint64(&buf, p->steps[i].activity);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(case_path_deserialize);
Datum
case_path_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = OmAggMemory(fcinfo, "case_path_deserialize");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	CasePath   *p = NewPath(cxt);
	int32		n;

	OmBytesReader(&buf, b);
	n = pq_getmsgint(&buf, 4);
	for (int i = 0; i < n; i++)
	{
		TimestampTz at = pq_getmsgint64(&buf);
		int64		seq = pq_getmsgint64(&buf);

		AddStep(p, at, seq, (uint64) pq_getmsgint64(&buf));
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(p);
}

/* process_steps' order: occurred_at, then seq (unique in the log) */
static int
CompareSteps(const void *a, const void *b)
{
	const PathStep *x = a;
	const PathStep *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

static bool
InStepOrder(const CasePath *p)
{
	for (int i = 1; i < p->n; i++)
		if (CompareSteps(&p->steps[i - 1], &p->steps[i]) > 0)
			return false;
	return true;
}

/* case_path_final(state) -> case_path */
PG_FUNCTION_INFO_V1(case_path_final);
Datum
case_path_final(PG_FUNCTION_ARGS)
{
	CasePath   *p;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	uint64		key = 0;

	(void) OmAggMemory(fcinfo, "case_path_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	p = (CasePath *) PG_GETARG_POINTER(0);
	if (p->n == 0)
		PG_RETURN_NULL();		/* no step: no path */
	/* the result's descriptor, looked up once per query (one call per case) */
	desc = (TupleDesc) fcinfo->flinfo->fn_extra;
	if (desc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "case_path_final must return a composite type");
		desc = BlessTupleDesc(desc);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = desc;
	}
	/*
	 * Steps mostly arrive in order (the log's index is in case order).
	 * Sorting in place leaves the same set of steps, so the state means the
	 * same to a later call (FINALFUNC_MODIFY READ_ONLY holds).
	 */
	if (!InStepOrder(p))
		qsort(p->steps, p->n, sizeof(PathStep), CompareSteps);
	for (int i = 0; i < p->n; i++)
		key ^= hash_uint32_extended((uint32) i + 1, p->steps[i].activity);
	values[0] = Int64GetDatum(p->n);
	values[1] = Int64GetDatum((int64) key);
	/* (seconds first, as date_part('epoch', ...) / 3600 computed it) */
	values[2] = Float8GetDatum((double) (p->steps[p->n - 1].at - p->steps[0].at)
							   / 1000000.0 / 3600);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
