/*
 * calendar.c
 *		Business calendars: working weekdays plus dated exceptions (holidays
 *		and extra working days), is_business_day and add_business_days.
 *
 * All calendars are cached per backend in one hash table.  A statement
 * trigger on calendars and calendar_exceptions sends a relcache
 * invalidation; our callback only marks the cache stale and bumps nothing
 * else; the next lookup reloads it and bumps the generation, which tells
 * promise.c to re-resolve its pointers into this cache.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/hsearch.h"

#include "order_mgmt.h"

static HTAB *calendars = NULL;
static MemoryContext calendars_cxt = NULL;
static bool calendars_valid = false;
static uint64 calendars_generation = 0;
static Oid	calendars_relid = InvalidOid;
static Oid	exceptions_relid = InvalidOid;

/* Relcache callback: mark the calendars stale; never reload here. */
static void
CalendarsInvalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == calendars_relid || relid == exceptions_relid)
		calendars_valid = false;
}

static OmCache calendars_cache = {"order_mgmt calendars", CalendarsInvalidate};

/* Copy a text id into buf; false when it is too long to be any id. */
bool
OmTextToId(text *t, char *buf)
{
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len >= OM_ID_LEN)
		return false;
	memcpy(buf, VARDATA_ANY(t), len);
	buf[len] = '\0';
	return true;
}

/* ISO weekday (1 = Monday .. 7 = Sunday) of a finite date. */
static inline int
IsoWeekday(DateADT day)
{
	/* 2000-01-01, day 0, was a Saturday */
	int			r = (int) (((int64) day + 5) % 7);

	if (r < 0)
		r += 7;
	return r + 1;
}

static void
AddCalendar(HeapTuple tup, TupleDesc desc)
{
	bool		found,
				isnull;
	char	   *id = SPI_getvalue(tup, desc, 1);
	OmCalendar *cal;
	Datum		arr = SPI_getbinval(tup, desc, 2, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (strlen(id) >= OM_ID_LEN)
		return;					/* unreachable: the table CHECKs lengths */
	cal = hash_search(calendars, id, HASH_ENTER, &found);
	cal->workmask = 0;
	cal->nexc = 0;
	cal->exc_day = NULL;
	cal->exc_working = NULL;
	if (!isnull)
	{
		deconstruct_array(DatumGetArrayTypeP(arr), INT4OID, 4, true, TYPALIGN_INT,
						  &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i] && DatumGetInt32(elems[i]) >= 1 && DatumGetInt32(elems[i]) <= 7)
				cal->workmask |= (uint8) (1 << (DatumGetInt32(elems[i]) - 1));
	}
	cal->any_working = cal->workmask != 0;
}

/* Attach the exceptions (ordered by calendar, day) to their calendars. */
static void
AddExceptions(SPITupleTable *tab, uint64 nrows)
{
	uint64		i = 0;

	while (i < nrows)
	{
		char	   *id = SPI_getvalue(tab->vals[i], tab->tupdesc, 1);
		OmCalendar *cal = strlen(id) < OM_ID_LEN ?
			hash_search(calendars, id, HASH_FIND, NULL) : NULL;
		uint64		j = i;

		while (j < nrows && strcmp(SPI_getvalue(tab->vals[j], tab->tupdesc, 1), id) == 0)
			j++;
		if (cal != NULL)
		{
			cal->nexc = (int) (j - i);
			cal->exc_day = MemoryContextAlloc(calendars_cxt, sizeof(DateADT) * cal->nexc);
			cal->exc_working = MemoryContextAlloc(calendars_cxt, sizeof(bool) * cal->nexc);
			for (uint64 k = i; k < j; k++)
			{
				bool		isnull;

				cal->exc_day[k - i] = DatumGetDateADT(SPI_getbinval(tab->vals[k], tab->tupdesc,
																	2, &isnull));
				cal->exc_working[k - i] = DatumGetBool(SPI_getbinval(tab->vals[k], tab->tupdesc,
																	 3, &isnull));
				if (cal->exc_working[k - i])
					cal->any_working = true;
			}
		}
		i = j;
	}
}

/* (Re)build the calendar cache from calendars and calendar_exceptions. */
static void
LoadCalendars(void)
{
	HASHCTL		ctl;
	OmSavedUser saved;

	calendars_cxt = OmCacheReset(&calendars_cache);
	calendars = NULL;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = OM_ID_LEN;
	ctl.entrysize = sizeof(OmCalendar);
	ctl.hcxt = calendars_cxt;

	/* mark valid first: an invalidation arriving during the load wins */
	calendars_relid = OmRelid("calendars");
	exceptions_relid = OmRelid("calendar_exceptions");
	calendars_valid = true;
	calendars_generation++;
	calendars = hash_create("order_mgmt calendars", 64, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	OmBecomeOwner(calendars_relid, &saved);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT calendar_id, workdays FROM " OM_SCHEMA ".calendars",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read %s.calendars", OM_SCHEMA);
		for (uint64 i = 0; i < SPI_processed; i++)
			AddCalendar(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
		if (SPI_execute("SELECT calendar_id, day, is_working FROM " OM_SCHEMA
						".calendar_exceptions ORDER BY calendar_id, day", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read %s.calendar_exceptions", OM_SCHEMA);
		AddExceptions(SPI_tuptable, SPI_processed);
		SPI_finish();
	}
	PG_CATCH();
	{
		/* a half-built cache must not pass for a valid one */
		calendars_valid = false;
		calendars = NULL;
		PG_RE_THROW();
	}
	PG_END_TRY();
	OmRestoreUser(&saved);
}

/* Make the cache current; its generation changes on every reload. */
uint64
OmCalendarGeneration(void)
{
	if (!calendars_valid || calendars == NULL)
		LoadCalendars();
	return calendars_generation;
}

/* A cached calendar, or NULL.  Pointers stay valid until the next reload. */
OmCalendar *
OmFindCalendar(const char *id)
{
	OmCalendarGeneration();
	return hash_search(calendars, id, HASH_FIND, NULL);
}

/* A calendar of the cache as it is (no reload): for promise.c's loader. */
OmCalendar *
OmLookupCalendar(const char *id)
{
	return calendars ? hash_search(calendars, id, HASH_FIND, NULL) : NULL;
}

/* The calendar named by a text argument, or error OM004. */
static OmCalendar *
CalendarArg(text *t)
{
	char		id[OM_ID_LEN];
	OmCalendar *cal = NULL;

	if (OmTextToId(t, id))
		cal = OmFindCalendar(id);
	if (cal == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_FOUND),
				 errmsg("calendar \"%s\" does not exist", text_to_cstring(t)),
				 errhint("Calendars are rows of %s.calendars.", OM_SCHEMA)));
	return cal;
}

static inline void
CheckDate(DateADT day)
{
	if (DATE_NOT_FINITE(day) || !IS_VALID_DATE(day))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("date out of range for a business calendar"),
				 errdetail("Business days are computed for finite dates only.")));
}

bool
OmIsBusinessDay(const OmCalendar *cal, DateADT day)
{
	int			lo = 0,
				hi = cal->nexc - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (cal->exc_day[mid] == day)
			return cal->exc_working[mid];
		if (cal->exc_day[mid] < day)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return (cal->workmask >> (IsoWeekday(day) - 1)) & 1;
}

static void
NoWorkingDay(const OmCalendar *cal, DateADT day)
{
	if (!cal->any_working)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NO_WORKING_DAY),
				 errmsg("calendar \"%s\" has no working day", cal->id),
				 errdetail("Its workdays are empty and no exception is a working day."),
				 errhint("Set %s.calendars.workdays, e.g. '{1,2,3,4,5}'.", OM_SCHEMA)));
	ereport(ERROR,
			(errcode(ERRCODE_OM_NO_WORKING_DAY),
			 errmsg("calendar \"%s\" has no working day within %d days of %s",
					cal->id, OM_SCAN_LIMIT,
					DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(day)))),
			 errhint("Check the exceptions in %s.calendar_exceptions.", OM_SCHEMA)));
}

/* The first business day on or after day. */
DateADT
OmRollForward(const OmCalendar *cal, DateADT day)
{
	DateADT		d = day;

	CheckDate(day);
	if (!cal->any_working)
		NoWorkingDay(cal, day);
	for (int i = 0; i < OM_SCAN_LIMIT; i++, d++)
	{
		CheckDate(d);
		if (OmIsBusinessDay(cal, d))
			return d;
	}
	NoWorkingDay(cal, day);
	return day;					/* not reached */
}

/*
 * The n-th business day after day (n > 0) or before it (n < 0); day itself
 * for n = 0.  At most OM_SCAN_LIMIT days are scanned per business day.
 */
DateADT
OmAddBusinessDays(const OmCalendar *cal, DateADT day, int n)
{
	int			step = n < 0 ? -1 : 1;
	int			left = n < 0 ? -n : n;
	int			scanned = 0;
	DateADT		d = day;

	CheckDate(day);
	if (n != 0 && !cal->any_working)
		NoWorkingDay(cal, day);
	while (left > 0)
	{
		d += step;
		CheckDate(d);
		if (OmIsBusinessDay(cal, d))
		{
			left--;
			scanned = 0;
		}
		else if (++scanned >= OM_SCAN_LIMIT)
			NoWorkingDay(cal, day);
	}
	return d;
}

static void
RequireArgs(FunctionCallInfo fcinfo, int nargs, const char *fname)
{
	for (int i = 0; i < nargs; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s: argument %d must not be null", fname, i + 1)));
}

/* is_business_day(day date, calendar_id text) -> bool */
PG_FUNCTION_INFO_V1(is_business_day);
Datum
is_business_day(PG_FUNCTION_ARGS)
{
	DateADT		day;
	OmCalendar *cal;

	RequireArgs(fcinfo, 2, "is_business_day");
	day = PG_GETARG_DATEADT(0);
	cal = CalendarArg(PG_GETARG_TEXT_PP(1));
	CheckDate(day);
	PG_RETURN_BOOL(OmIsBusinessDay(cal, day));
}

/* add_business_days(day date, n int, calendar_id text) -> date */
PG_FUNCTION_INFO_V1(add_business_days);
Datum
add_business_days(PG_FUNCTION_ARGS)
{
	DateADT		day;
	int32		n;
	OmCalendar *cal;

	RequireArgs(fcinfo, 3, "add_business_days");
	day = PG_GETARG_DATEADT(0);
	n = PG_GETARG_INT32(1);
	cal = CalendarArg(PG_GETARG_TEXT_PP(2));
	if (n < -OM_SCAN_LIMIT || n > OM_SCAN_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be between %d and %d", -OM_SCAN_LIMIT, OM_SCAN_LIMIT),
				 errdetail("Got %d.", n)));
	PG_RETURN_DATEADT(OmAddBusinessDays(cal, day, n));
}

