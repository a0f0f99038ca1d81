/*
 * calendar.c
 *		Business calendars: working weekdays plus dated exceptions (holidays
 *		and extra working days).  The calendars themselves are part of the
 *		reference data cache (reference.c); this file is the arithmetic, and
 *		is_business_day and add_business_days.  Every scan is bounded: a
 *		calendar with no working day fails with OM020 instead of looping.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/date.h"

#include "promise.h"

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
				 errmsg("calendar \"%s\" has no working day", OM_ID(cal)),
				 errdetail("Its workdays are empty and no exception is a working day."),
				 errhint("Set %s.calendars.workdays, for example to '{1,2,3,4,5}'.", OM_SCHEMA)));
	ereport(ERROR,
			(errcode(ERRCODE_OM_NO_WORKING_DAY),
			 errmsg("calendar \"%s\" has no working day within %d days of %s",
					OM_ID(cal), OM_SCAN_LIMIT, OmDateText(day)),
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

/* is_business_day(day date, calendar_id text) -> bool */
PG_FUNCTION_INFO_V1(is_business_day);
Datum
is_business_day(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"day", "calendar_id"};
	DateADT		day;
	OmCalendar *cal;

	OmRequireArgs(fcinfo, names, 2);
	day = PG_GETARG_DATEADT(0);
	cal = OmCalendarArg(OmRefDataGet(), PG_GETARG_TEXT_PP(1));
	CheckDate(day);
	PG_RETURN_BOOL(OmIsBusinessDay(cal, day));
}

/* add_business_days(day date, n int, calendar_id text) -> date */
PG_FUNCTION_INFO_V1(add_business_days);
Datum
add_business_days(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"day", "n", "calendar_id"};
	int32		n;
	OmCalendar *cal;

	OmRequireArgs(fcinfo, names, 3);
	n = PG_GETARG_INT32(1);
	cal = OmCalendarArg(OmRefDataGet(), PG_GETARG_TEXT_PP(2));
	if (n < -OM_SCAN_LIMIT || n > OM_SCAN_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be between %d and %d", -OM_SCAN_LIMIT, OM_SCAN_LIMIT),
				 errdetail("Got %d.", n)));
	PG_RETURN_DATEADT(OmAddBusinessDays(cal, PG_GETARG_DATEADT(0), n));
}
