/*
 * promise.c
 *		The delivery promise rules (SPEC.md section 5) for one warehouse,
 *		service and start: order time -> warehouse local time by zone name,
 *		cut-off, handling on the warehouse calendar, pickup, transit on the
 *		service's (or lane's) terms, delivery day; the choice of a service
 *		(the one home of that rule, for orders, shipments and
 *		choose_service); estimate_delivery and best_service.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"

#include "promise.h"

/* The local date of ts in zone tz, moved to the next day after the cut-off. */
static DateADT
OrderDay(TimestampTz ts, const OmWarehouse *w)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;
	DateADT		day;
	TimeADT		local;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, &tzoff, &tm, &fsec, NULL, w->tz) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("order time out of range for a delivery estimate")));
	day = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
	local = (((((int64) tm.tm_hour * MINS_PER_HOUR) + tm.tm_min) * SECS_PER_MINUTE)
			 + tm.tm_sec) * USECS_PER_SEC + fsec;
	return local <= w->cutoff ? day : day + 1;	/* the cut-off itself is today */
}

/*
 * Transit from the ship dates already in e: transit min/max business days
 * on the service's (or lane's) terms, rolled onto a delivery day.
 */
static void
Transit(OmRefData *ref, const OmWarehouse *w, const OmService *s, const char *dest,
		OmEstimate *e)
{
	OmLane	   *lane = OmFindLane(ref, s, w, dest);
	int			tmin = lane ? lane->transit_min : s->transit_min;
	int			tmax = lane ? lane->transit_max : s->transit_max;

	e->delivery_earliest = OmRollForward(s->delivery_cal,
										 OmAddBusinessDays(s->transit_cal, e->ship_earliest, tmin));
	e->delivery_latest = OmRollForward(s->delivery_cal,
									   OmAddBusinessDays(s->transit_cal, e->ship_latest, tmax));
	e->cost = (lane && lane->has_cost) ? lane->cost : s->cost;
}

/* The rules of SPEC.md section 5 for one warehouse, service and start. */
static void
EstimateCore(OmRefData *ref, const OmWarehouse *w, const OmService *s, const char *dest,
			 TimestampTz start, OmEstimate *e)
{
	DateADT		day = OmRollForward(w->cal, OrderDay(start, w));

	e->ship_earliest = OmAddBusinessDays(w->cal, day, s->handling_min);
	e->ship_latest = OmAddBusinessDays(w->cal, day, s->handling_max);
	if (s->pickup_cal != NULL)
	{
		e->ship_earliest = OmRollForward(s->pickup_cal, e->ship_earliest);
		e->ship_latest = OmRollForward(s->pickup_cal, e->ship_latest);
	}
	Transit(ref, w, s, dest, e);
}

/*
 * A parcel already handed to the carrier (dispatch, or a delay or failed
 * attempt on the way): its transit starts again on the local date of
 * restart (the warehouse's zone, no cut-off, no handling), SPEC.md section
 * 5's transit and delivery-day rules unchanged.  0.5.0.
 */
void
OmEstimateTransit(OmRefData *ref, const OmWarehouse *w, const OmService *s, const char *dest,
				  TimestampTz restart, OmEstimate *e)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;

	if (TIMESTAMP_NOT_FINITE(restart) ||
		timestamp2tm(restart, &tzoff, &tm, &fsec, NULL, w->tz) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("restart time out of range for a delivery estimate")));
	e->ship_earliest = e->ship_latest =
		date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
	Transit(ref, w, s, dest, e);
}

/*
 * The estimate of several starts (the lines of an order) with one service:
 * everything arrives with the latest line; the cost is the highest.
 */
void
OmEstimateStarts(OmRefData *ref, const OmService *s, const OmStart *starts, int n,
				 const char *dest, OmEstimate *out)
{
	for (int i = 0; i < n; i++)
	{
		OmEstimate	e;

		EstimateCore(ref, starts[i].w, s, dest, starts[i].start, &e);
		if (i == 0)
		{
			*out = e;
			continue;
		}
		out->ship_earliest = Max(out->ship_earliest, e.ship_earliest);
		out->ship_latest = Max(out->ship_latest, e.ship_latest);
		out->delivery_earliest = Max(out->delivery_earliest, e.delivery_earliest);
		out->delivery_latest = Max(out->delivery_latest, e.delivery_latest);
		out->cost = Max(out->cost, e.cost);
	}
}

/* Is a better than b under the strategy (ties: the earlier service id)? */
static bool
Better(const OmEstimate *a, const OmEstimate *b, OmStrategy strategy)
{
	if (strategy == OM_CHEAPEST && a->cost != b->cost)
		return a->cost < b->cost;
	if (a->delivery_latest != b->delivery_latest)
		return a->delivery_latest < b->delivery_latest;
	if (a->delivery_earliest != b->delivery_earliest)
		return a->delivery_earliest < b->delivery_earliest;
	if (strategy == OM_FASTEST && a->cost != b->cost)
		return a->cost < b->cost;
	return false;
}

/*
 * The best active service for the starts and destination whose latest
 * delivery is on or before the deadline (when there is one); NULL if none.
 * 'cheapest': lowest cost, then earlier latest delivery, then id;
 * 'fastest': earliest latest delivery, then cost, then id.
 */
OmService *
OmBestService(OmRefData *ref, const OmStart *starts, int n, const char *dest,
			  bool has_deadline, DateADT deadline, OmStrategy strategy, OmEstimate *best)
{
	OmService  *found = NULL;

	for (int i = 0; i < ref->nservices; i++)
	{
		OmService  *s = ref->services_by_id[i];
		OmEstimate	e;

		if (!s->active)
			continue;
		OmEstimateStarts(ref, s, starts, n, dest, &e);
		if (has_deadline && e.delivery_latest > deadline)
			continue;
		if (found == NULL || Better(&e, best, strategy))
		{
			found = s;
			*best = e;
		}
	}
	return found;
}

/*
 * The default service when none is named: the cheapest that meets the
 * deadline (or the cheapest when there is none), else the fastest.  Orders
 * use it with requested_delivery, new shipments with their promise.
 */
OmService *
OmDefaultService(OmRefData *ref, const OmStart *starts, int n, const char *dest,
				 bool has_deadline, DateADT deadline, OmEstimate *best)
{
	OmService  *s = OmBestService(ref, starts, n, dest, has_deadline, deadline, OM_CHEAPEST, best);

	if (s == NULL && has_deadline)
		s = OmBestService(ref, starts, n, dest, false, 0, OM_FASTEST, best);
	return s;
}

OmStrategy
OmStrategyArg(text *t)
{
	char	   *s = text_to_cstring(t);

	if (strcmp(s, "cheapest") == 0)
		return OM_CHEAPEST;
	if (strcmp(s, "fastest") == 0)
		return OM_FASTEST;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown strategy \"%s\"", s),
			 errdetail("The strategy is cheapest or fastest.")));
	return OM_CHEAPEST;			/* not reached */
}

/* Blessed result descriptor of the calling function, kept in fn_extra. */
static TupleDesc
ResultDesc(FunctionCallInfo fcinfo)
{
	TupleDesc	desc = (TupleDesc) fcinfo->flinfo->fn_extra;

	if (desc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		desc = BlessTupleDesc(CreateTupleDescCopy(desc));
		fcinfo->flinfo->fn_extra = desc;
		MemoryContextSwitchTo(old);
	}
	return desc;
}

/* Destination zone of (country, postal_code) arguments i and i + 1. */
static const char *
DestinationArgs(OmRefData *ref, FunctionCallInfo fcinfo, int i)
{
	text	   *c = PG_GETARG_TEXT_PP(i);
	text	   *p = PG_ARGISNULL(i + 1) ? NULL : PG_GETARG_TEXT_PP(i + 1);

	return OmDestination(ref, VARDATA_ANY(c), VARSIZE_ANY_EXHDR(c),
						 p ? VARDATA_ANY(p) : NULL, p ? VARSIZE_ANY_EXHDR(p) : 0);
}

/* Where and when handling starts: placed_at, or ready_at when that is later. */
static OmStart
StartArgs(FunctionCallInfo fcinfo, OmWarehouse *w, int i)
{
	OmStart		st;

	st.w = w;
	st.start = PG_GETARG_TIMESTAMPTZ(i);
	if (!PG_ARGISNULL(i + 1) && PG_GETARG_TIMESTAMPTZ(i + 1) > st.start)
		st.start = PG_GETARG_TIMESTAMPTZ(i + 1);
	return st;
}

Datum
OmEstimateDatum(FunctionCallInfo fcinfo, const OmEstimate *e, int natts,
				Datum *extra, bool *extra_nulls, bool known)
{
	Datum		values[8];
	bool		nulls[8] = {0};

	values[0] = DateADTGetDatum(e->ship_earliest);
	values[1] = DateADTGetDatum(e->ship_latest);
	values[2] = DateADTGetDatum(e->delivery_earliest);
	values[3] = DateADTGetDatum(e->delivery_latest);
	for (int i = 0; i < 4; i++)
		nulls[i] = !known;
	for (int i = 4; i < natts; i++)
	{
		values[i] = extra[i - 4];
		nulls[i] = extra_nulls[i - 4];
	}
	return HeapTupleGetDatum(heap_form_tuple(ResultDesc(fcinfo), values, nulls));
}

/*
 * estimate_delivery(warehouse_id, service_id, country, postal_code,
 * placed_at, ready_at) -> (ship_earliest, ship_latest, delivery_earliest,
 * delivery_latest).  Only postal_code and ready_at may be null.
 */
PG_FUNCTION_INFO_V1(estimate_delivery);
Datum
estimate_delivery(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"warehouse_id", "service_id", "country", NULL,
	"placed_at"};
	OmRefData  *ref;
	OmStart		st;
	OmService  *s;
	OmEstimate	e;

	OmRequireArgs(fcinfo, names, 5);
	ref = OmRefDataGet();
	st = StartArgs(fcinfo, OmWarehouseArg(ref, PG_GETARG_TEXT_PP(0)), 4);
	s = OmServiceArg(ref, PG_GETARG_TEXT_PP(1));
	OmEstimateStarts(ref, s, &st, 1, DestinationArgs(ref, fcinfo, 2), &e);
	return OmEstimateDatum(fcinfo, &e, 4, NULL, NULL, true);
}

/*
 * estimate_transit(warehouse_id, service_id, country, postal_code,
 * restart_at) -> (delivery_earliest, delivery_latest, known, note): the
 * delivery window of a parcel whose transit (re)starts at restart_at
 * (OmEstimateTransit).  Like estimate_order_delivery it does not guess: an
 * unknown warehouse or service, or a warehouse without a usable zone or
 * calendar, gives known = false and the reason in note.  0.5.0.
 */
PG_FUNCTION_INFO_V1(estimate_transit);
Datum
estimate_transit(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"warehouse_id", "service_id", "country", NULL,
	"restart_at"};
	OmRefData  *ref;
	OmWarehouse *w;
	OmService  *s;
	OmEstimate	e = {0};
	const char *note = NULL;
	Datum		values[4];
	bool		nulls[4] = {0};
	char	   *wid,
			   *sid;
	const char *dest;

	OmRequireArgs(fcinfo, names, 5);
	ref = OmRefDataGet();
	dest = DestinationArgs(ref, fcinfo, 2);
	wid = text_to_cstring(PG_GETARG_TEXT_PP(0));
	sid = text_to_cstring(PG_GETARG_TEXT_PP(1));
	w = OmFindWarehouse(ref, wid);
	s = OmFindService(ref, sid);
	if (w == NULL)
		note = psprintf("warehouse \"%s\" does not exist", wid);
	else if (OmWarehouseProblem(w))
		note = OmWarehouseProblem(w);
	else if (s == NULL)
		note = psprintf("service \"%s\" does not exist", sid);
	else
		OmEstimateTransit(ref, w, s, dest, PG_GETARG_TIMESTAMPTZ(4), &e);
	values[0] = DateADTGetDatum(e.delivery_earliest);
	values[1] = DateADTGetDatum(e.delivery_latest);
	values[2] = BoolGetDatum(note == NULL);
	values[3] = note ? CStringGetTextDatum(note) : (Datum) 0;
	nulls[0] = nulls[1] = note != NULL;
	nulls[3] = note == NULL;
	return HeapTupleGetDatum(heap_form_tuple(ResultDesc(fcinfo), values, nulls));
}

/*
 * best_service(warehouse_id, country, postal_code, placed_at, ready_at,
 * deliver_by, strategy) -> service_id, or NULL when no service delivers by
 * deliver_by (null: no deadline).
 */
PG_FUNCTION_INFO_V1(best_service);
Datum
best_service(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"warehouse_id", "country", NULL, "placed_at", NULL,
	NULL, "strategy"};
	OmRefData  *ref;
	OmStart		st;
	OmService  *s;
	OmEstimate	e;
	OmStrategy	strategy;

	OmRequireArgs(fcinfo, names, 7);
	strategy = OmStrategyArg(PG_GETARG_TEXT_PP(6));
	ref = OmRefDataGet();
	st = StartArgs(fcinfo, OmWarehouseArg(ref, PG_GETARG_TEXT_PP(0)), 3);
	s = OmBestService(ref, &st, 1, DestinationArgs(ref, fcinfo, 1), !PG_ARGISNULL(5),
					  PG_ARGISNULL(5) ? 0 : PG_GETARG_DATEADT(5), strategy, &e);
	if (s == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(OM_ID(s)));
}
