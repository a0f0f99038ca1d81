/*
 * promise.c
 *		The delivery promise rules (SPEC.md section 5) for one warehouse,
 *		service and start: order time -> warehouse local time by zone name,
 *		cut-off, handling on the warehouse calendar, pickup, transit on the
 *		service's (or lane's) terms, delivery day.  estimate_delivery,
 *		best_service and valid_time_zone.
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

/* The rules of SPEC.md section 5 for one warehouse, service and start. */
void
OmEstimateCore(const OmWarehouse *w, const OmService *s, const char *dest,
			 TimestampTz start, OmEstimate *e)
{
	OmLane	   *lane = OmFindLane(s, w, dest);
	int			tmin = lane ? lane->transit_min : s->transit_min;
	int			tmax = lane ? lane->transit_max : s->transit_max;
	DateADT		day = OmRollForward(w->cal, OrderDay(start, w));

	e->ship_earliest = OmAddBusinessDays(w->cal, day, s->handling_min);
	e->ship_latest = OmAddBusinessDays(w->cal, day, s->handling_max);
	if (s->pickup_cal != NULL)
	{
		e->ship_earliest = OmRollForward(s->pickup_cal, e->ship_earliest);
		e->ship_latest = OmRollForward(s->pickup_cal, e->ship_latest);
	}
	e->delivery_earliest = OmRollForward(s->delivery_cal,
										 OmAddBusinessDays(s->transit_cal, e->ship_earliest, tmin));
	e->delivery_latest = OmRollForward(s->delivery_cal,
									   OmAddBusinessDays(s->transit_cal, e->ship_latest, tmax));
	e->cost = (lane && lane->has_cost) ? lane->cost : s->cost;
}

/* Is a better than b under the strategy (ties: the earlier service id)? */
bool
OmBetter(const OmEstimate *a, const OmEstimate *b, OmStrategy strategy)
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

static OmStrategy
StrategyArg(text *t)
{
	char	   *s = text_to_cstring(t);

	if (strcmp(s, "cheapest") == 0)
		return OM_CHEAPEST;
	if (strcmp(s, "fastest") == 0)
		return OM_FASTEST;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown strategy \"%s\"", s),
			 errdetail("strategy must be cheapest or fastest.")));
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

void
OmRequireArg(FunctionCallInfo fcinfo, int i, const char *fname, const char *argname)
{
	if (PG_ARGISNULL(i))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: %s must not be null", fname, argname)));
}

static OmWarehouse *
WarehouseArg(text *t)
{
	char		id[OM_ID_LEN];
	OmWarehouse *w = OmTextToId(t, id) ? OmFindWarehouse(id) : NULL;

	if (w == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_FOUND),
				 errmsg("warehouse \"%s\" does not exist", text_to_cstring(t))));
	OmCheckWarehouse(w);
	return w;
}

static OmService *
ServiceArg(text *t)
{
	char		id[OM_ID_LEN];
	OmService  *s = OmTextToId(t, id) ? OmFindService(id) : NULL;

	if (s == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_FOUND),
				 errmsg("service \"%s\" does not exist", text_to_cstring(t))));
	return s;
}

/* Destination zone of (country, postal_code) arguments i and i + 1. */
static const char *
DestinationArgs(FunctionCallInfo fcinfo, int i)
{
	text	   *c = PG_GETARG_TEXT_PP(i);
	text	   *p = PG_ARGISNULL(i + 1) ? NULL : PG_GETARG_TEXT_PP(i + 1);
	char		country[3],
				postal[OM_ID_LEN];

	OmNormalizeDestination(VARDATA_ANY(c), VARSIZE_ANY_EXHDR(c),
						 p ? VARDATA_ANY(p) : NULL, p ? VARSIZE_ANY_EXHDR(p) : 0,
						 country, postal);
	return OmDestZone(country, postal);
}

/* Start of handling: placed_at, or ready_at when that is later. */
static TimestampTz
StartArg(FunctionCallInfo fcinfo, int i)
{
	TimestampTz placed = PG_GETARG_TIMESTAMPTZ(i);

	if (!PG_ARGISNULL(i + 1) && PG_GETARG_TIMESTAMPTZ(i + 1) > placed)
		return PG_GETARG_TIMESTAMPTZ(i + 1);
	return placed;
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
	OmWarehouse *w;
	OmService  *s;
	OmEstimate	e;

	OmRequireArg(fcinfo, 0, "estimate_delivery", "warehouse_id");
	OmRequireArg(fcinfo, 1, "estimate_delivery", "service_id");
	OmRequireArg(fcinfo, 2, "estimate_delivery", "country");
	OmRequireArg(fcinfo, 4, "estimate_delivery", "placed_at");
	OmEnsurePromiseData();
	w = WarehouseArg(PG_GETARG_TEXT_PP(0));
	s = ServiceArg(PG_GETARG_TEXT_PP(1));
	OmEstimateCore(w, s, DestinationArgs(fcinfo, 2), StartArg(fcinfo, 4), &e);
	return OmEstimateDatum(fcinfo, &e, 4, NULL, NULL, true);
}

/*
 * The best active service for one warehouse, destination and start whose
 * latest delivery is on or before deliver_by (0: any); NULL when none.
 */
static OmService *
BestService(const OmWarehouse *w, const char *dest, TimestampTz start,
			bool has_deadline, DateADT deliver_by, OmStrategy strategy, OmEstimate *best)
{
	OmService  *found = NULL;
	int			nservices;
	OmService **service_list = OmServiceList(&nservices);

	for (int i = 0; i < nservices; i++)
	{
		OmService  *s = service_list[i];
		OmEstimate	e;

		if (!s->active)
			continue;
		OmEstimateCore(w, s, dest, start, &e);
		if (has_deadline && e.delivery_latest > deliver_by)
			continue;
		if (found == NULL || OmBetter(&e, best, strategy))
		{
			found = s;
			*best = e;
		}
	}
	return found;
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
	OmWarehouse *w;
	OmService  *s;
	OmEstimate	e;
	OmStrategy	strategy;

	OmRequireArg(fcinfo, 0, "best_service", "warehouse_id");
	OmRequireArg(fcinfo, 1, "best_service", "country");
	OmRequireArg(fcinfo, 3, "best_service", "placed_at");
	OmRequireArg(fcinfo, 6, "best_service", "strategy");
	strategy = StrategyArg(PG_GETARG_TEXT_PP(6));
	OmEnsurePromiseData();
	w = WarehouseArg(PG_GETARG_TEXT_PP(0));
	s = BestService(w, DestinationArgs(fcinfo, 1), StartArg(fcinfo, 3), !PG_ARGISNULL(5),
					PG_ARGISNULL(5) ? 0 : PG_GETARG_DATEADT(5), strategy, &e);
	if (s == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(s->id));
}

/* valid_time_zone(tz text) -> bool: does PostgreSQL know this zone name? */
PG_FUNCTION_INFO_V1(valid_time_zone);
Datum
valid_time_zone(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pg_tz	   *tz;

	if (name[0] == '\0' || strlen(name) >= OM_ID_LEN)
		PG_RETURN_BOOL(false);
	tz = pg_tzset(name);
	PG_RETURN_BOOL(tz != NULL && pg_tz_acceptable(tz));
}

