/*
 * reference.c
 *		Reference data of the delivery promise, cached per backend:
 *		warehouses, services, lanes and destination zone rules, next to the
 *		calendars of calendar.c, so an estimate runs no SQL.
 *
 * A statement trigger on each table sends a relcache invalidation; our
 * callback only marks the cache stale, and it is also rebuilt when the
 * calendar cache was (its pointers point into that cache).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"

#include "promise.h"

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

static OmCache promise_cache = {"order_mgmt promise data", PromiseInvalidate};

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

	promise_cxt = OmCacheReset(&promise_cache);
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
void
OmEnsurePromiseData(void)
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

OmWarehouse *
OmFindWarehouse(const char *id)
{
	return hash_search(warehouses, id, HASH_FIND, NULL);
}

OmService *
OmFindService(const char *id)
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
void
OmNormalizeDestination(const char *country_in, int clen, const char *postal_in, int plen,
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
const char *
OmDestZone(const char *country, const char *postal)
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

OmLane *
OmFindLane(const OmService *s, const OmWarehouse *w, const char *dest)
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
const char *
OmWarehouseProblem(const OmWarehouse *w)
{
	if (w->tz == NULL)
		return psprintf("warehouse \"%s\" has time zone \"%s\", which PostgreSQL does not know",
						w->id, w->tzname);
	if (w->cal == NULL)
		return psprintf("warehouse \"%s\" has no handling calendar", w->id);
	return NULL;
}

void
OmCheckWarehouse(const OmWarehouse *w)
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


/* The cached services, sorted by id; valid until the next OmEnsurePromiseData. */
OmService **
OmServiceList(int *n)
{
	*n = nservices;
	return service_list;
}

