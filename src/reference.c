/*
 * reference.c
 *		The reference data of the delivery promise as one cache (cache.c):
 *		calendars with their exceptions, warehouses, services, lanes and
 *		destination zone rules, loaded together so an estimate runs no SQL
 *		and every pointer between them belongs to the same version.  Also
 *		what a zone name may be (valid_time_zone).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/memutils.h"

#include "promise.h"

typedef struct OmZoneRule
{
	OmKey		key;			/* country, postal prefix */
	char	   *zone;
} OmZoneRule;

static OmCache ref_cache = {
	.name = "order_mgmt reference data",
	.ntables = 6,
	.tables = {"calendars", "calendar_exceptions", "warehouses", "services", "lanes",
	"zone_rules"},
	.reference = true,
};

static inline int
CountryIndex(const char *c)
{
	return (c[0] - 'A') * 26 + (c[1] - 'A');
}

static inline bool
IsUpperCountry(const char *c)
{
	return strlen(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z';
}

static void
LoadCalendars(OmRefData *ref)
{
	bool		found;

	OmLoadQuery(psprintf("SELECT calendar_id, workdays FROM %s", OmLoadRel("calendars")));
	ref->calendars = OmKeyTable("order_mgmt calendars", sizeof(OmCalendar), SPI_processed);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		OmCalendar *cal = OmKeyEnter(ref->calendars, OmLoadText(r, 1), NULL, NULL, &found);
		bool		isnull;
		Datum		arr = OmLoadDatum(r, 2, &isnull);
		Datum	   *elems;
		bool	   *nulls;
		int			n = 0;

		cal->workmask = 0;
		if (!isnull)
			deconstruct_array(DatumGetArrayTypeP(arr), INT4OID, 4, true, TYPALIGN_INT,
							  &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i] && DatumGetInt32(elems[i]) >= 1 && DatumGetInt32(elems[i]) <= 7)
				cal->workmask |= (uint8) (1 << (DatumGetInt32(elems[i]) - 1));
		cal->any_working = cal->workmask != 0;
		cal->nexc = 0;
		cal->exc_day = NULL;
		cal->exc_working = NULL;
	}
}

/* Attach the exceptions (ordered by calendar, day) to their calendars. */
static void
LoadExceptions(OmRefData *ref)
{
	uint64		i = 0;

	OmLoadQuery(psprintf("SELECT calendar_id, day, is_working FROM %s"
						 " ORDER BY calendar_id COLLATE \"C\", day", OmLoadRel("calendar_exceptions")));
	while (i < SPI_processed)
	{
		char	   *id = OmLoadText(i, 1);
		OmCalendar *cal = OmFindCalendar(ref, id);
		uint64		j = i;

		while (j < SPI_processed && strcmp(OmLoadText(j, 1), id) == 0)
			j++;
		if (cal != NULL)
		{
			cal->nexc = (int) (j - i);
			cal->exc_day = palloc(sizeof(DateADT) * cal->nexc);
			cal->exc_working = palloc(sizeof(bool) * cal->nexc);
			for (uint64 k = i; k < j; k++)
			{
				bool		isnull;

				cal->exc_day[k - i] = DatumGetDateADT(OmLoadDatum(k, 2, &isnull));
				cal->exc_working[k - i] = DatumGetBool(OmLoadDatum(k, 3, &isnull));
				cal->any_working |= cal->exc_working[k - i];
			}
		}
		i = j;
	}
}

static OmCalendar *
CalendarOrNull(OmRefData *ref, const char *id)
{
	return id[0] ? OmFindCalendar(ref, id) : NULL;
}

static char *
TextOrNull(uint64 r, int i)
{
	bool		isnull;

	OmLoadDatum(r, i, &isnull);
	return isnull ? NULL : pstrdup(OmLoadText(r, i));
}

static void
LoadWarehouses(OmRefData *ref)
{
	bool		found;

	OmLoadQuery(psprintf("SELECT warehouse_id, tz, cutoff_local, calendar_id, zone FROM %s",
						 OmLoadRel("warehouses")));
	ref->warehouses = OmKeyTable("order_mgmt warehouses", sizeof(OmWarehouse), SPI_processed);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		OmWarehouse *w = OmKeyEnter(ref->warehouses, OmLoadText(r, 1), NULL, NULL, &found);
		bool		isnull;

		w->tzname = pstrdup(OmLoadText(r, 2));
		w->tz = pg_tzset(w->tzname);
		if (w->tz != NULL && !pg_tz_acceptable(w->tz))
			w->tz = NULL;
		w->cutoff = DatumGetTimeADT(OmLoadDatum(r, 3, &isnull));
		w->calendar_id = TextOrNull(r, 4);
		w->cal = w->calendar_id ? CalendarOrNull(ref, w->calendar_id) : NULL;
		w->zone = TextOrNull(r, 5);
	}
}

static void
LoadServices(OmRefData *ref)
{
	bool		found;

	OmLoadQuery(psprintf("SELECT service_id, handling_min, handling_max, transit_min, transit_max,"
						 " cost::pg_catalog.float8, active, transit_calendar_id,"
						 " delivery_calendar_id, coalesce(pickup_calendar_id, '') FROM %s"
						 " ORDER BY service_id COLLATE \"C\"", OmLoadRel("services")));
	ref->services = OmKeyTable("order_mgmt services", sizeof(OmService), SPI_processed);
	ref->services_by_id = palloc0(sizeof(OmService *) * (SPI_processed + 1));
	ref->nservices = 0;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		OmService  *s = OmKeyEnter(ref->services, OmLoadText(r, 1), NULL, NULL, &found);
		bool		isnull;

		s->handling_min = DatumGetInt32(OmLoadDatum(r, 2, &isnull));
		s->handling_max = DatumGetInt32(OmLoadDatum(r, 3, &isnull));
		s->transit_min = DatumGetInt32(OmLoadDatum(r, 4, &isnull));
		s->transit_max = DatumGetInt32(OmLoadDatum(r, 5, &isnull));
		s->cost = DatumGetFloat8(OmLoadDatum(r, 6, &isnull));
		s->active = DatumGetBool(OmLoadDatum(r, 7, &isnull));
		s->transit_cal = CalendarOrNull(ref, OmLoadText(r, 8));
		s->delivery_cal = CalendarOrNull(ref, OmLoadText(r, 9));
		s->pickup_cal = CalendarOrNull(ref, OmLoadText(r, 10));
		ref->services_by_id[ref->nservices++] = s;
	}
}

static void
LoadLanes(OmRefData *ref)
{
	bool		found;

	OmLoadQuery(psprintf("SELECT service_id, origin_zone, dest_zone, transit_min, transit_max,"
						 " cost::pg_catalog.float8 FROM %s", OmLoadRel("lanes")));
	ref->lanes = OmKeyTable("order_mgmt lanes", sizeof(OmLane), SPI_processed);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		OmLane	   *lane = OmKeyEnter(ref->lanes, OmLoadText(r, 1), OmLoadText(r, 2),
									  OmLoadText(r, 3), &found);
		bool		isnull;
		Datum		cost;

		lane->transit_min = DatumGetInt32(OmLoadDatum(r, 4, &isnull));
		lane->transit_max = DatumGetInt32(OmLoadDatum(r, 5, &isnull));
		cost = OmLoadDatum(r, 6, &isnull);
		lane->has_cost = !isnull;
		lane->cost = isnull ? 0 : DatumGetFloat8(cost);
	}
}

static void
LoadZoneRules(OmRefData *ref)
{
	bool		found;

	for (int i = 0; i < 26 * 26; i++)
		ref->max_prefix[i] = -1;
	OmLoadQuery(psprintf("SELECT country::pg_catalog.text, postal_prefix, zone FROM %s",
						 OmLoadRel("zone_rules")));
	ref->zone_rules = OmKeyTable("order_mgmt zone rules", sizeof(OmZoneRule), SPI_processed);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		char	   *country = OmLoadText(r, 1);
		char	   *prefix = OmLoadText(r, 2);
		OmZoneRule *rule;
		int			ci;

		if (!IsUpperCountry(country))
			continue;			/* unreachable: the table CHECKs the format */
		rule = OmKeyEnter(ref->zone_rules, country, prefix, NULL, &found);
		rule->zone = pstrdup(OmLoadText(r, 3));
		ci = CountryIndex(country);
		ref->max_prefix[ci] = Max(ref->max_prefix[ci], (int) strlen(prefix));
	}
}

static void *
LoadRefData(MemoryContext cxt)
{
	OmRefData  *ref = palloc0(sizeof(OmRefData));

	LoadCalendars(ref);
	LoadExceptions(ref);
	LoadWarehouses(ref);
	LoadServices(ref);
	LoadLanes(ref);
	LoadZoneRules(ref);
	return ref;
}

/* The current reference data; its pointers stay valid to the end of the transaction. */
OmRefData *
OmRefDataGet(void)
{
	if (OmCacheValid(&ref_cache))
		return ref_cache.data;
	return OmCacheRebuild(&ref_cache, LoadRefData);
}

OmCalendar *
OmFindCalendar(OmRefData *ref, const char *id)
{
	return OmKeyFind(ref->calendars, id, NULL, NULL);
}

OmWarehouse *
OmFindWarehouse(OmRefData *ref, const char *id)
{
	return OmKeyFind(ref->warehouses, id, NULL, NULL);
}

OmService *
OmFindService(OmRefData *ref, const char *id)
{
	return OmKeyFind(ref->services, id, NULL, NULL);
}

/* The one home of "find the reference row named by an argument, or OM004". */
static void *
FindArg(HTAB *table, text *id, const char *what, const char *tablename)
{
	char	   *s = text_to_cstring(id);
	void	   *entry = OmKeyFind(table, s, NULL, NULL);

	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_FOUND),
				 errmsg("%s \"%s\" does not exist", what, s),
				 errhint("Add it to %s.%s.", OM_SCHEMA, tablename)));
	return entry;
}

OmCalendar *
OmCalendarArg(OmRefData *ref, text *id)
{
	return FindArg(ref->calendars, id, "calendar", "calendars");
}

OmWarehouse *
OmWarehouseArg(OmRefData *ref, text *id)
{
	OmWarehouse *w = FindArg(ref->warehouses, id, "warehouse", "warehouses");

	OmCheckWarehouse(w);
	return w;
}

OmService *
OmServiceArg(OmRefData *ref, text *id)
{
	return FindArg(ref->services, id, "service", "services");
}

static inline bool
IsAsciiLetter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Destination zone: the rule with the longest matching prefix, or NULL. */
const char *
OmDestZone(OmRefData *ref, const char *country, const char *postal)
{
	int			maxlen = ref->max_prefix[CountryIndex(country)];
	int			plen = (int) strlen(postal);
	char	   *prefix = pstrdup(postal);

	for (int len = Min(maxlen, plen); len >= 0; len--)
	{
		OmZoneRule *rule;

		prefix[len] = '\0';
		rule = OmKeyFind(ref->zone_rules, country, prefix, NULL);
		if (rule != NULL)
			return rule->zone;
	}
	return NULL;
}

/*
 * The destination zone of a country (two letters, any case) and a postal
 * code (compared upper case, letters and digits only).
 */
const char *
OmDestination(OmRefData *ref, const char *country_in, int clen, const char *postal_in, int plen)
{
	char		country[3];
	char	   *postal = palloc(plen + 1);
	int			n = 0;

	if (clen != 2 || !IsAsciiLetter(country_in[0]) || !IsAsciiLetter(country_in[1]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("country must be an ISO 3166 alpha-2 code"),
				 errdetail("Got \"%.*s\".", clen, country_in)));
	country[0] = pg_ascii_toupper((unsigned char) country_in[0]);
	country[1] = pg_ascii_toupper((unsigned char) country_in[1]);
	country[2] = '\0';
	for (int i = 0; postal_in != NULL && i < plen; i++)
		if (IsAsciiLetter(postal_in[i]) || (postal_in[i] >= '0' && postal_in[i] <= '9'))
			postal[n++] = pg_ascii_toupper((unsigned char) postal_in[i]);
	postal[n] = '\0';
	return OmDestZone(ref, country, postal);
}

OmLane *
OmFindLane(OmRefData *ref, const OmService *s, const OmWarehouse *w, const char *dest)
{
	if (dest == NULL || w->zone == NULL)
		return NULL;
	return OmKeyFind(ref->lanes, OM_ID(s), w->zone, dest);
}

/* Why a warehouse cannot be used for an estimate, or NULL when it can. */
const char *
OmWarehouseProblem(const OmWarehouse *w)
{
	if (w->tz == NULL)
		return psprintf("warehouse \"%s\" has time zone \"%s\", which is not in PostgreSQL's zone database",
						OM_ID(w), w->tzname);
	if (w->cal == NULL)
		return psprintf("warehouse \"%s\" has no handling calendar", OM_ID(w));
	return NULL;
}

void
OmCheckWarehouse(const OmWarehouse *w)
{
	if (w->tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" of warehouse \"%s\" is not recognized",
						w->tzname, OM_ID(w))));
	if (w->cal == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OM_INCOMPLETE_SETUP),
				 errmsg("warehouse \"%s\" has no handling calendar", OM_ID(w)),
				 errhint("Set %s.warehouses.calendar_id.", OM_SCHEMA)));
}

/*
 * The names of PostgreSQL's zone database, lower case, read once per
 * backend (about 1,200 files; only reference data writes ask).
 */
static HTAB *
ZoneNames(void)
{
	static HTAB *names = NULL;
	HASHCTL		ctl;
	pg_tzenum  *dir;
	pg_tz	   *tz;
	bool		found;
	HTAB	   *t;

	if (names != NULL)
		return names;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = TZ_STRLEN_MAX + 1;
	ctl.entrysize = TZ_STRLEN_MAX + 1;
	t = hash_create("order_mgmt zone names", 2048, &ctl, HASH_ELEM | HASH_STRINGS);
	dir = pg_tzenumerate_start();
	while ((tz = pg_tzenumerate_next(dir)) != NULL)
	{
		char	   *lower = asc_tolower(pg_get_timezone_name(tz),
										strlen(pg_get_timezone_name(tz)));

		hash_search(t, lower, HASH_ENTER, &found);
		pfree(lower);
	}
	pg_tzenumerate_end(dir);
	names = t;
	return names;
}

/*
 * A zone name is valid when it names a zone of PostgreSQL's database that is
 * not a fixed offset.  POSIX strings ("UTC+3", "+03:00", "<+03>-3",
 * "EST5EDT,M3.2.0,M11.1.0") are read by PostgreSQL with the opposite sign of
 * ISO 8601 and Etc/GMT+3 is UTC-3: none of them is a place.
 */
static bool
ValidZoneName(const char *name)
{
	size_t		len = strlen(name);
	char	   *lower;
	bool		found;

	if (len == 0 || len > TZ_STRLEN_MAX)
		return false;
	for (size_t i = 0; i + 1 < len; i++)
		if ((name[i] == '+' || name[i] == '-') && name[i + 1] >= '0' && name[i + 1] <= '9')
			return false;
	lower = asc_tolower(name, len);
	hash_search(ZoneNames(), lower, HASH_FIND, &found);
	pfree(lower);
	return found && pg_tzset(name) != NULL;
}

/* valid_time_zone(tz text) -> bool: used by the CHECKs of zone columns. */
PG_FUNCTION_INFO_V1(valid_time_zone);
Datum
valid_time_zone(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ValidZoneName(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}
