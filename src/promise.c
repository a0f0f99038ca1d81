/*
 * promise.c
 *		The delivery promise engine: order time -> warehouse local time (by
 *		zone name), cut-off, handling on the warehouse calendar, pickup,
 *		transit on the service's (or lane's) terms, delivery day.
 *
 * Warehouses, services, lanes and zone rules are cached per backend next to
 * the calendars of calendar.c, so estimate_delivery runs no SPI.  A
 * statement trigger on each table sends a relcache invalidation; our
 * callback only marks the cache stale, and it is also rebuilt when the
 * calendar cache was (its pointers point into that cache).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "order_mgmt.h"

typedef struct OmWarehouse
{
	char		id[OM_ID_LEN];
	char		tzname[OM_ID_LEN];
	pg_tz	   *tz;				/* NULL: PostgreSQL does not know tzname */
	TimeADT		cutoff;
	char		calendar_id[OM_ID_LEN];
	OmCalendar *cal;			/* NULL: no handling calendar */
	char		zone[OM_ID_LEN];	/* "" when none */
} OmWarehouse;

typedef struct OmService
{
	char		id[OM_ID_LEN];
	int			handling_min,
				handling_max,
				transit_min,
				transit_max;
	double		cost;
	bool		active;
	OmCalendar *transit_cal;
	OmCalendar *delivery_cal;
	OmCalendar *pickup_cal;		/* NULL: any handling day */
} OmService;

typedef struct OmLaneKey
{
	char		service[OM_ID_LEN];
	char		origin[OM_ID_LEN];
	char		dest[OM_ID_LEN];
} OmLaneKey;

typedef struct OmLane
{
	OmLaneKey	key;
	int			transit_min,
				transit_max;
	double		cost;
	bool		has_cost;
} OmLane;

typedef struct OmZoneKey
{
	char		country[4];
	char		prefix[OM_ID_LEN];
} OmZoneKey;

typedef struct OmZoneRule
{
	OmZoneKey	key;
	char		zone[OM_ID_LEN];
} OmZoneRule;

/* One estimate; cost is that of the lane, else of the service. */
typedef struct OmEstimate
{
	DateADT		ship_earliest,
				ship_latest,
				delivery_earliest,
				delivery_latest;
	double		cost;
} OmEstimate;

typedef enum OmStrategy
{
	OM_CHEAPEST,
	OM_FASTEST
} OmStrategy;

#define NCOUNTRY (26 * 26)

static HTAB *warehouses = NULL;
static HTAB *services = NULL;
static HTAB *lanes = NULL;
static HTAB *zone_rules = NULL;
static OmService **service_list = NULL;	/* sorted by id */
static int	nservices = 0;
static int	zone_maxlen[NCOUNTRY];	/* -1: no rule for the country */
static MemoryContext promise_cxt = NULL;
static bool promise_valid = false;
static bool callback_registered = false;
static uint64 promise_calendar_generation = 0;
static Oid	promise_relids[4];

/* Relcache callback: mark the cache stale; never reload here. */
static void
PromiseInvalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid)
		promise_valid = false;
	for (int i = 0; i < (int) lengthof(promise_relids); i++)
		if (relid == promise_relids[i])
			promise_valid = false;
}

static HTAB *
MakeHash(const char *name, Size keysize, Size entrysize, bool strings)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = promise_cxt;
	return hash_create(name, 64, &ctl,
					   HASH_ELEM | HASH_CONTEXT | (strings ? HASH_STRINGS : HASH_BLOBS));
}

/* Text column i of an SPI row into buf ("" when null or too long). */
static void
GetId(HeapTuple tup, TupleDesc desc, int i, char *buf)
{
	char	   *s = SPI_getvalue(tup, desc, i);

	buf[0] = '\0';
	if (s != NULL && strlen(s) < OM_ID_LEN)
		strlcpy(buf, s, OM_ID_LEN);
}

static Datum
GetBin(HeapTuple tup, TupleDesc desc, int i, bool *isnull)
{
	return SPI_getbinval(tup, desc, i, isnull);
}

static OmCalendar *
CalendarOrNull(const char *id)
{
	return id[0] ? OmLookupCalendar(id) : NULL;
}

static void
LoadWarehouses(void)
{
	if (SPI_execute("SELECT warehouse_id, tz, cutoff_local, calendar_id, zone FROM "
					OM_SCHEMA ".warehouses", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.warehouses", OM_SCHEMA);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char		id[OM_ID_LEN];
		bool		isnull;
		OmWarehouse *w;

		GetId(tup, desc, 1, id);
		if (id[0] == '\0')
			continue;			/* unreachable: the table CHECKs lengths */
		w = hash_search(warehouses, id, HASH_ENTER, NULL);
		GetId(tup, desc, 2, w->tzname);
		w->tz = w->tzname[0] ? pg_tzset(w->tzname) : NULL;
		if (w->tz != NULL && !pg_tz_acceptable(w->tz))
			w->tz = NULL;
		w->cutoff = DatumGetTimeADT(GetBin(tup, desc, 3, &isnull));
		GetId(tup, desc, 4, w->calendar_id);
		w->cal = CalendarOrNull(w->calendar_id);
		GetId(tup, desc, 5, w->zone);
	}
}

static void
LoadServices(void)
{
	if (SPI_execute("SELECT service_id, handling_min, handling_max, transit_min, transit_max,"
					" cost::pg_catalog.float8, active, transit_calendar_id,"
					" delivery_calendar_id, pickup_calendar_id FROM " OM_SCHEMA
					".services ORDER BY service_id COLLATE \"C\"", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.services", OM_SCHEMA);
	service_list = MemoryContextAllocZero(promise_cxt,
										  sizeof(OmService *) * (SPI_processed + 1));
	nservices = 0;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char		id[OM_ID_LEN],
					cal[OM_ID_LEN];
		bool		isnull;
		OmService  *s;

		GetId(tup, desc, 1, id);
		if (id[0] == '\0')
			continue;
		s = hash_search(services, id, HASH_ENTER, NULL);
		s->handling_min = DatumGetInt32(GetBin(tup, desc, 2, &isnull));
		s->handling_max = DatumGetInt32(GetBin(tup, desc, 3, &isnull));
		s->transit_min = DatumGetInt32(GetBin(tup, desc, 4, &isnull));
		s->transit_max = DatumGetInt32(GetBin(tup, desc, 5, &isnull));
		s->cost = DatumGetFloat8(GetBin(tup, desc, 6, &isnull));
		s->active = DatumGetBool(GetBin(tup, desc, 7, &isnull));
		GetId(tup, desc, 8, cal);
		s->transit_cal = CalendarOrNull(cal);
		GetId(tup, desc, 9, cal);
		s->delivery_cal = CalendarOrNull(cal);
		GetId(tup, desc, 10, cal);
		s->pickup_cal = CalendarOrNull(cal);
		service_list[nservices++] = s;
	}
}

static void
LoadLanes(void)
{
	if (SPI_execute("SELECT service_id, origin_zone, dest_zone, transit_min, transit_max,"
					" cost::pg_catalog.float8 FROM " OM_SCHEMA ".lanes", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.lanes", OM_SCHEMA);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		OmLaneKey	key;
		OmLane	   *lane;
		bool		isnull;
		Datum		cost;

		memset(&key, 0, sizeof(key));
		GetId(tup, desc, 1, key.service);
		GetId(tup, desc, 2, key.origin);
		GetId(tup, desc, 3, key.dest);
		lane = hash_search(lanes, &key, HASH_ENTER, NULL);
		lane->transit_min = DatumGetInt32(GetBin(tup, desc, 4, &isnull));
		lane->transit_max = DatumGetInt32(GetBin(tup, desc, 5, &isnull));
		cost = GetBin(tup, desc, 6, &isnull);
		lane->has_cost = !isnull;
		lane->cost = isnull ? 0 : DatumGetFloat8(cost);
	}
}

static inline int
CountryIndex(const char *c)
{
	return (c[0] - 'A') * 26 + (c[1] - 'A');
}

static void
LoadZoneRules(void)
{
	for (int i = 0; i < NCOUNTRY; i++)
		zone_maxlen[i] = -1;
	if (SPI_execute("SELECT country, postal_prefix, zone FROM " OM_SCHEMA ".zone_rules",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.zone_rules", OM_SCHEMA);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		OmZoneKey	key;
		OmZoneRule *rule;
		char		country[OM_ID_LEN];
		int			ci;

		memset(&key, 0, sizeof(key));
		GetId(tup, desc, 1, country);
		if (strlen(country) != 2 || country[0] < 'A' || country[0] > 'Z'
			|| country[1] < 'A' || country[1] > 'Z')
			continue;			/* unreachable: the table CHECKs the format */
		memcpy(key.country, country, 2);
		GetId(tup, desc, 2, key.prefix);
		rule = hash_search(zone_rules, &key, HASH_ENTER, NULL);
		GetId(tup, desc, 3, rule->zone);
		ci = CountryIndex(country);
		zone_maxlen[ci] = Max(zone_maxlen[ci], (int) strlen(key.prefix));
	}
}

/* (Re)build the cache of warehouses, services, lanes and zone rules. */
static void
LoadPromiseData(uint64 calendar_generation)
{
	OmSavedUser saved;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(PromiseInvalidate, (Datum) 0);
		callback_registered = true;
	}
	if (promise_cxt == NULL)
		promise_cxt = AllocSetContextCreate(CacheMemoryContext, "order_mgmt promise data",
											ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(promise_cxt);
	warehouses = services = lanes = zone_rules = NULL;
	service_list = NULL;
	nservices = 0;

	promise_relids[0] = OmRelid("warehouses");
	promise_relids[1] = OmRelid("services");
	promise_relids[2] = OmRelid("lanes");
	promise_relids[3] = OmRelid("zone_rules");
	/* mark valid first: an invalidation arriving during the load wins */
	promise_valid = true;
	promise_calendar_generation = calendar_generation;
	warehouses = MakeHash("order_mgmt warehouses", OM_ID_LEN, sizeof(OmWarehouse), true);
	services = MakeHash("order_mgmt services", OM_ID_LEN, sizeof(OmService), true);
	lanes = MakeHash("order_mgmt lanes", sizeof(OmLaneKey), sizeof(OmLane), false);
	zone_rules = MakeHash("order_mgmt zone rules", sizeof(OmZoneKey), sizeof(OmZoneRule), false);

	OmBecomeOwner(promise_relids[0], &saved);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		LoadWarehouses();
		LoadServices();
		LoadLanes();
		LoadZoneRules();
		SPI_finish();
	}
	PG_CATCH();
	{
		/* a half-built cache must not pass for a valid one */
		promise_valid = false;
		warehouses = NULL;
		PG_RE_THROW();
	}
	PG_END_TRY();
	OmRestoreUser(&saved);
}

/*
 * Make both caches current.  Call once at the top of an entry point: the
 * pointers handed out stay valid until the next call.
 */
static void
EnsurePromiseData(void)
{
	uint64		gen = OmCalendarGeneration();

	/* a load may see a calendar invalidation: settle (bounded) */
	for (int i = 0; i < 10; i++)
	{
		if (promise_valid && warehouses != NULL && gen == promise_calendar_generation)
			return;
		LoadPromiseData(gen);
		gen = OmCalendarGeneration();
	}
	if (!promise_valid || gen != promise_calendar_generation)
		elog(ERROR, "order_mgmt reference data keeps changing; try again");
}

static OmWarehouse *
FindWarehouse(const char *id)
{
	return hash_search(warehouses, id, HASH_FIND, NULL);
}

static OmService *
FindService(const char *id)
{
	return hash_search(services, id, HASH_FIND, NULL);
}

static inline bool
IsAsciiLetter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * Normalize country (two letters, upper case) and postal code (letters and
 * digits, upper case, at most OM_ID_LEN - 1 of them).
 */
static void
NormalizeDestination(const char *country_in, int clen, const char *postal_in, int plen,
					 char *country, char *postal)
{
	int			n = 0;

	if (clen != 2 || !IsAsciiLetter(country_in[0]) || !IsAsciiLetter(country_in[1]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("country must be an ISO 3166 alpha-2 code"),
				 errdetail("Got \"%.*s\".", clen, country_in)));
	country[0] = pg_ascii_toupper((unsigned char) country_in[0]);
	country[1] = pg_ascii_toupper((unsigned char) country_in[1]);
	country[2] = '\0';
	for (int i = 0; postal_in != NULL && i < plen && n < OM_ID_LEN - 1; i++)
		if (IsAsciiLetter(postal_in[i]) || (postal_in[i] >= '0' && postal_in[i] <= '9'))
			postal[n++] = pg_ascii_toupper((unsigned char) postal_in[i]);
	postal[n] = '\0';
}

/* Destination zone: the rule with the longest matching prefix, or NULL. */
static const char *
DestZone(const char *country, const char *postal)
{
	OmZoneKey	key;
	int			maxlen = zone_maxlen[CountryIndex(country)];
	int			plen = (int) strlen(postal);

	if (maxlen < 0)
		return NULL;
	memset(&key, 0, sizeof(key));
	memcpy(key.country, country, 2);
	for (int len = Min(maxlen, plen); len >= 0; len--)
	{
		OmZoneRule *rule;

		memset(key.prefix, 0, sizeof(key.prefix));
		memcpy(key.prefix, postal, len);
		rule = hash_search(zone_rules, &key, HASH_FIND, NULL);
		if (rule != NULL)
			return rule->zone;
	}
	return NULL;
}

static OmLane *
FindLane(const OmService *s, const OmWarehouse *w, const char *dest)
{
	OmLaneKey	key;

	if (dest == NULL || w->zone[0] == '\0')
		return NULL;
	memset(&key, 0, sizeof(key));
	strlcpy(key.service, s->id, OM_ID_LEN);
	strlcpy(key.origin, w->zone, OM_ID_LEN);
	strlcpy(key.dest, dest, OM_ID_LEN);
	return hash_search(lanes, &key, HASH_FIND, NULL);
}

/* Why a warehouse cannot be used for an estimate, or NULL when it can. */
static const char *
WarehouseProblem(const OmWarehouse *w)
{
	if (w->tz == NULL)
		return psprintf("warehouse \"%s\" has time zone \"%s\", which PostgreSQL does not know",
						w->id, w->tzname);
	if (w->cal == NULL)
		return psprintf("warehouse \"%s\" has no handling calendar", w->id);
	return NULL;
}

static void
CheckWarehouse(const OmWarehouse *w)
{
	if (w->tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" of warehouse \"%s\" is not recognized",
						w->tzname, w->id)));
	if (w->cal == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OM_INCOMPLETE_SETUP),
				 errmsg("warehouse \"%s\" has no handling calendar", w->id),
				 errhint("Set %s.warehouses.calendar_id.", OM_SCHEMA)));
}

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
static void
EstimateCore(const OmWarehouse *w, const OmService *s, const char *dest,
			 TimestampTz start, OmEstimate *e)
{
	OmLane	   *lane = FindLane(s, w, dest);
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

static void
RequireArg(FunctionCallInfo fcinfo, int i, const char *fname, const char *argname)
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
	OmWarehouse *w = OmTextToId(t, id) ? FindWarehouse(id) : NULL;

	if (w == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_FOUND),
				 errmsg("warehouse \"%s\" does not exist", text_to_cstring(t))));
	CheckWarehouse(w);
	return w;
}

static OmService *
ServiceArg(text *t)
{
	char		id[OM_ID_LEN];
	OmService  *s = OmTextToId(t, id) ? FindService(id) : NULL;

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

	NormalizeDestination(VARDATA_ANY(c), VARSIZE_ANY_EXHDR(c),
						 p ? VARDATA_ANY(p) : NULL, p ? VARSIZE_ANY_EXHDR(p) : 0,
						 country, postal);
	return DestZone(country, postal);
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

static Datum
EstimateDatum(FunctionCallInfo fcinfo, const OmEstimate *e, int natts,
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

	RequireArg(fcinfo, 0, "estimate_delivery", "warehouse_id");
	RequireArg(fcinfo, 1, "estimate_delivery", "service_id");
	RequireArg(fcinfo, 2, "estimate_delivery", "country");
	RequireArg(fcinfo, 4, "estimate_delivery", "placed_at");
	EnsurePromiseData();
	w = WarehouseArg(PG_GETARG_TEXT_PP(0));
	s = ServiceArg(PG_GETARG_TEXT_PP(1));
	EstimateCore(w, s, DestinationArgs(fcinfo, 2), StartArg(fcinfo, 4), &e);
	return EstimateDatum(fcinfo, &e, 4, NULL, NULL, true);
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

	for (int i = 0; i < nservices; i++)
	{
		OmService  *s = service_list[i];
		OmEstimate	e;

		if (!s->active)
			continue;
		EstimateCore(w, s, dest, start, &e);
		if (has_deadline && e.delivery_latest > deliver_by)
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

	RequireArg(fcinfo, 0, "best_service", "warehouse_id");
	RequireArg(fcinfo, 1, "best_service", "country");
	RequireArg(fcinfo, 3, "best_service", "placed_at");
	RequireArg(fcinfo, 6, "best_service", "strategy");
	strategy = StrategyArg(PG_GETARG_TEXT_PP(6));
	EnsurePromiseData();
	w = WarehouseArg(PG_GETARG_TEXT_PP(0));
	s = BestService(w, DestinationArgs(fcinfo, 1), StartArg(fcinfo, 3), !PG_ARGISNULL(5),
					PG_ARGISNULL(5) ? 0 : PG_GETARG_DATEADT(5), strategy, &e);
	if (s == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(s->id));
}

/* ------------------------------------------------------------------------
 * Orders
 * ------------------------------------------------------------------------ */

typedef struct OmOrderInfo
{
	int64		order_id;
	char	   *warehouse_id;	/* NULL when none */
	char	   *service_id;
	char	   *country;
	char	   *postal;
	TimestampTz placed_at;
	bool		has_requested;
	DateADT		requested;
} OmOrderInfo;

typedef struct OmLineStart
{
	OmWarehouse *w;
	TimestampTz start;
} OmLineStart;

typedef struct OmOrderResult
{
	bool		known;
	OmEstimate	e;
	char		service_id[OM_ID_LEN];
	char		note[256];
} OmOrderResult;

static SPIPlanPtr order_plan = NULL;
static SPIPlanPtr lines_plan = NULL;

static SPIPlanPtr
KeepPlan(SPIPlanPtr *slot, const char *sql)
{
	Oid			argtypes[1] = {INT8OID};

	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, 1, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*slot = plan;
	}
	return *slot;
}

static void
Unknown(OmOrderResult *r, const char *note)
{
	r->known = false;
	strlcpy(r->note, note, sizeof(r->note));
}

/*
 * Where and when each open line starts: its warehouse (the order's when the
 * line names none) and placed_at, or its ready_at when later.  A
 * backordered line without ready_at makes the estimate unknown.
 */
static OmLineStart *
LineStarts(const OmOrderInfo *o, int *nlines, OmOrderResult *r)
{
	SPITupleTable *tab;
	Datum		arg = Int64GetDatum(o->order_id);
	OmLineStart *starts;
	int			n = 0;

	if (SPI_execute_plan(KeepPlan(&lines_plan,
								  "SELECT line_no, warehouse_id, ready_at, qty_backordered FROM "
								  OM_SCHEMA ".order_lines WHERE order_id OPERATOR(pg_catalog.=) $1"
								  " AND qty OPERATOR(pg_catalog.>) qty_cancelled ORDER BY line_no"),
						 &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.order_lines", OM_SCHEMA);
	tab = SPI_tuptable;
	starts = palloc(sizeof(OmLineStart) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed && r->known; i++)
	{
		HeapTuple	tup = tab->vals[i];
		bool		isnull,
					ready_null;
		char	   *line_no = SPI_getvalue(tup, tab->tupdesc, 1);
		char	   *wid = SPI_getvalue(tup, tab->tupdesc, 2);
		Datum		ready = SPI_getbinval(tup, tab->tupdesc, 3, &ready_null);
		int32		backordered = DatumGetInt32(SPI_getbinval(tup, tab->tupdesc, 4, &isnull));
		OmLineStart *ls = &starts[n++];

		if (wid == NULL)
			wid = o->warehouse_id;
		ls->w = (wid && strlen(wid) < OM_ID_LEN) ? FindWarehouse(wid) : NULL;
		if (wid == NULL)
			Unknown(r, psprintf("line %s has no warehouse (nor has the order)", line_no));
		else if (ls->w == NULL)
			Unknown(r, psprintf("warehouse \"%s\" of line %s does not exist", wid, line_no));
		else if (WarehouseProblem(ls->w))
			Unknown(r, WarehouseProblem(ls->w));
		else if (backordered > 0 && ready_null)
			Unknown(r, psprintf("line %s is backordered and has no ready date", line_no));
		ls->start = o->placed_at;
		if (!ready_null && DatumGetTimestampTz(ready) > ls->start)
			ls->start = DatumGetTimestampTz(ready);
	}
	*nlines = n;
	return starts;
}

/* The order estimate for one service: the latest line, in full. */
static void
EstimateLines(const OmService *s, const OmLineStart *lines, int n, const char *dest,
			  OmEstimate *out)
{
	for (int i = 0; i < n; i++)
	{
		OmEstimate	e;

		EstimateCore(lines[i].w, s, dest, lines[i].start, &e);
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

/*
 * The default service of an order without one: the cheapest active service
 * whose latest delivery meets requested_delivery; when none does (or none
 * was requested), the cheapest overall... see README "Delivery promise".
 */
static OmService *
DefaultService(const OmOrderInfo *o, const OmLineStart *lines, int n, const char *dest,
			   OmEstimate *best)
{
	OmService  *found = NULL;

	for (int pass = 0; pass < 2 && found == NULL; pass++)
	{
		/* pass 0: cheapest meeting the request; pass 1: fastest */
		bool		deadline = pass == 0 && o->has_requested;
		OmStrategy	strategy = (pass == 0) ? OM_CHEAPEST : OM_FASTEST;

		for (int i = 0; i < nservices; i++)
		{
			OmService  *s = service_list[i];
			OmEstimate	e;

			if (!s->active)
				continue;
			EstimateLines(s, lines, n, dest, &e);
			if (deadline && e.delivery_latest > o->requested)
				continue;
			if (found == NULL || Better(&e, best, strategy))
			{
				found = s;
				*best = e;
			}
		}
	}
	return found;
}

/* The current estimate of an order; run inside SPI, caches current. */
static void
EstimateOrder(const OmOrderInfo *o, OmOrderResult *r)
{
	OmLineStart *lines;
	int			n;
	const char *dest;
	char		country[3],
				postal[OM_ID_LEN];
	OmService  *s = NULL;

	memset(r, 0, sizeof(*r));
	r->known = true;
	lines = LineStarts(o, &n, r);
	if (!r->known)
		return;
	if (n == 0)
	{
		/* no open line: the order's own warehouse, from placed_at */
		OmWarehouse *w = o->warehouse_id && strlen(o->warehouse_id) < OM_ID_LEN ?
			FindWarehouse(o->warehouse_id) : NULL;

		if (w == NULL || WarehouseProblem(w))
		{
			Unknown(r, w ? WarehouseProblem(w) : "the order has no open line and no warehouse");
			return;
		}
		lines[0].w = w;
		lines[0].start = o->placed_at;
		n = 1;
	}
	NormalizeDestination(o->country, strlen(o->country), o->postal,
						 o->postal ? strlen(o->postal) : 0, country, postal);
	dest = DestZone(country, postal);
	if (o->service_id != NULL)
	{
		s = strlen(o->service_id) < OM_ID_LEN ? FindService(o->service_id) : NULL;
		if (s == NULL)
		{
			Unknown(r, psprintf("service \"%s\" does not exist", o->service_id));
			return;
		}
		EstimateLines(s, lines, n, dest, &r->e);
	}
	else if ((s = DefaultService(o, lines, n, dest, &r->e)) == NULL)
	{
		Unknown(r, "no active service exists");
		return;
	}
	strlcpy(r->service_id, s->id, OM_ID_LEN);
}

static void
ResultDatums(const OmOrderResult *r, Datum *extra, bool *nulls)
{
	extra[0] = BoolGetDatum(r->known);
	nulls[0] = false;
	extra[1] = r->known ? CStringGetTextDatum(r->service_id) : (Datum) 0;
	nulls[1] = !r->known;
	extra[2] = r->known ? (Datum) 0 : CStringGetTextDatum(r->note);
	nulls[2] = r->known;
}

/*
 * estimate_order_delivery(order_id) -> the estimate record plus known,
 * service_id and note.  An order the rules cannot estimate (no warehouse,
 * unknown service, a backordered line with no ready date) gives known =
 * false, null dates and the reason in note: never a guess.
 */
PG_FUNCTION_INFO_V1(estimate_order_delivery);
Datum
estimate_order_delivery(PG_FUNCTION_ARGS)
{
	Datum		arg;
	OmSavedUser saved;
	OmOrderInfo o;
	OmOrderResult r;
	SPITupleTable *tab;
	bool		isnull;
	Datum		extra[3];
	bool		extra_nulls[3];

	RequireArg(fcinfo, 0, "estimate_order_delivery", "order_id");
	memset(&o, 0, sizeof(o));
	o.order_id = PG_GETARG_INT64(0);
	arg = Int64GetDatum(o.order_id);
	EnsurePromiseData();
	OmBecomeOwner(OmRelid("orders"), &saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(KeepPlan(&order_plan,
								  "SELECT warehouse_id, service_id, ship_to_country::pg_catalog.text,"
								  " ship_to_postal, placed_at, requested_delivery FROM "
								  OM_SCHEMA ".orders WHERE order_id OPERATOR(pg_catalog.=) $1"),
						 &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.orders", OM_SCHEMA);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_FOUND),
				 errmsg("order %lld does not exist", (long long) o.order_id)));
	tab = SPI_tuptable;
	o.warehouse_id = SPI_getvalue(tab->vals[0], tab->tupdesc, 1);
	o.service_id = SPI_getvalue(tab->vals[0], tab->tupdesc, 2);
	o.country = SPI_getvalue(tab->vals[0], tab->tupdesc, 3);
	o.postal = SPI_getvalue(tab->vals[0], tab->tupdesc, 4);
	o.placed_at = DatumGetTimestampTz(SPI_getbinval(tab->vals[0], tab->tupdesc, 5, &isnull));
	o.requested = DatumGetDateADT(SPI_getbinval(tab->vals[0], tab->tupdesc, 6, &isnull));
	o.has_requested = !isnull;
	EstimateOrder(&o, &r);
	SPI_finish();
	OmRestoreUser(&saved);
	ResultDatums(&r, extra, extra_nulls);
	return EstimateDatum(fcinfo, &r.e, 7, extra, extra_nulls, r.known);
}

/* Text value of a named column of a trigger tuple, or NULL. */
static char *
TupleText(HeapTuple tup, TupleDesc desc, const char *col)
{
	int			att = SPI_fnumber(desc, col);

	if (att <= 0)
		elog(ERROR, "order_mgmt promise trigger: column \"%s\" not found", col);
	return SPI_getvalue(tup, desc, att);
}

static Datum
TupleBin(HeapTuple tup, TupleDesc desc, const char *col, bool *isnull)
{
	int			att = SPI_fnumber(desc, col);

	if (att <= 0)
		elog(ERROR, "order_mgmt promise trigger: column \"%s\" not found", col);
	return SPI_getbinval(tup, desc, att, isnull);
}

/*
 * promise_trigger: BEFORE UPDATE FOR EACH ROW on orders, after the
 * lifecycle trigger.  When the order becomes confirmed and has no promise
 * yet, stores its current estimate as the promise (nothing when unknown).
 */
PG_FUNCTION_INFO_V1(promise_trigger);
Datum
promise_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtup;
	char	   *from,
			   *to;
	const char *cols[4] = {"promised_ship_earliest", "promised_ship_latest",
	"promised_delivery_earliest", "promised_delivery_latest"};
	int			atts[4];
	Datum		values[4];
	bool		nulls[4] = {0};
	OmOrderInfo o;
	OmOrderResult r;
	OmSavedUser saved;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "promise_trigger: not called by trigger manager");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event)
		|| !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		elog(ERROR, "promise_trigger: must be fired BEFORE UPDATE FOR EACH ROW");
	desc = RelationGetDescr(trigdata->tg_relation);
	newtup = trigdata->tg_newtuple;
	from = TupleText(trigdata->tg_trigtuple, desc, "status");
	to = TupleText(newtup, desc, "status");
	if (to == NULL || strcmp(to, "confirmed") != 0 || (from && strcmp(from, "confirmed") == 0))
		return PointerGetDatum(newtup);
	for (int i = 0; i < 4; i++)
	{
		atts[i] = SPI_fnumber(desc, cols[i]);
		if (atts[i] <= 0 || !heap_attisnull(newtup, atts[i], desc))
			return PointerGetDatum(newtup);	/* a promise is kept as given */
	}

	memset(&o, 0, sizeof(o));
	o.order_id = DatumGetInt64(TupleBin(newtup, desc, "order_id", &isnull));
	o.warehouse_id = TupleText(newtup, desc, "warehouse_id");
	o.service_id = TupleText(newtup, desc, "service_id");
	o.country = TupleText(newtup, desc, "ship_to_country");
	o.postal = TupleText(newtup, desc, "ship_to_postal");
	o.placed_at = DatumGetTimestampTz(TupleBin(newtup, desc, "placed_at", &isnull));
	o.requested = DatumGetDateADT(TupleBin(newtup, desc, "requested_delivery", &isnull));
	o.has_requested = !isnull;

	EnsurePromiseData();
	OmBecomeOwner(RelationGetRelid(trigdata->tg_relation), &saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	EstimateOrder(&o, &r);
	SPI_finish();
	OmRestoreUser(&saved);
	if (!r.known)
		return PointerGetDatum(newtup);
	values[0] = DateADTGetDatum(r.e.ship_earliest);
	values[1] = DateADTGetDatum(r.e.ship_latest);
	values[2] = DateADTGetDatum(r.e.delivery_earliest);
	values[3] = DateADTGetDatum(r.e.delivery_latest);
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 4, atts, values, nulls));
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
