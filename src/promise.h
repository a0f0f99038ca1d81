/*
 * promise.h
 *		The delivery promise engine: the reference data cache (reference.c),
 *		business calendars (calendar.c), the estimate of one shipment start
 *		(promise.c) and of an order as it stands (order_promise.c).
 */
#ifndef OM_PROMISE_H
#define OM_PROMISE_H

#include "fmgr.h"
#include "pgtime.h"
#include "utils/date.h"
#include "utils/timestamp.h"

#include "order_mgmt.h"

#define OM_SCAN_LIMIT 3660		/* days scanned at most for one working day */

/* Ids are the first string of each entry's key (any length). */
#define OM_ID(entry) ((entry)->key.s[0])

typedef struct OmCalendar
{
	OmKey		key;			/* calendar_id */
	uint8		workmask;		/* bit (ISO weekday - 1) set: working */
	bool		any_working;	/* some weekday or exception works */
	int			nexc;			/* exceptions, sorted by day */
	DateADT    *exc_day;
	bool	   *exc_working;
} OmCalendar;

typedef struct OmWarehouse
{
	OmKey		key;			/* warehouse_id */
	char	   *tzname;
	pg_tz	   *tz;				/* NULL: not a zone of PostgreSQL's database */
	TimeADT		cutoff;
	char	   *calendar_id;	/* NULL: none */
	OmCalendar *cal;			/* NULL: no handling calendar */
	char	   *zone;			/* origin zone, NULL when none */
} OmWarehouse;

typedef struct OmService
{
	OmKey		key;			/* service_id */
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

typedef struct OmLane
{
	OmKey		key;			/* service_id, origin zone, destination zone */
	int			transit_min,
				transit_max;
	double		cost;
	bool		has_cost;
} OmLane;

/* The reference data of the promise, one consistent version. */
typedef struct OmRefData
{
	HTAB	   *calendars;
	HTAB	   *warehouses;
	HTAB	   *services;
	HTAB	   *lanes;
	HTAB	   *zone_rules;
	OmService **services_by_id; /* active or not, sorted by id */
	int			nservices;
	int			max_prefix[26 * 26];	/* per country; -1: no rule */
} OmRefData;

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

/* Where and when one line (or shipment) starts. */
typedef struct OmStart
{
	OmWarehouse *w;
	TimestampTz start;
} OmStart;

/* reference.c: the current version; pointers stay valid to the end of the transaction */
extern OmRefData *OmRefDataGet(void);
extern OmCalendar *OmFindCalendar(OmRefData *ref, const char *id);
extern OmWarehouse *OmFindWarehouse(OmRefData *ref, const char *id);
extern OmService *OmFindService(OmRefData *ref, const char *id);
extern OmCalendar *OmCalendarArg(OmRefData *ref, text *id);
extern OmWarehouse *OmWarehouseArg(OmRefData *ref, text *id);
extern OmService *OmServiceArg(OmRefData *ref, text *id);
extern OmLane *OmFindLane(OmRefData *ref, const OmService *s, const OmWarehouse *w,
						  const char *dest);
extern const char *OmDestZone(OmRefData *ref, const char *country, const char *postal);
extern const char *OmDestination(OmRefData *ref, const char *country, int clen,
								 const char *postal, int plen);
extern const char *OmWarehouseProblem(const OmWarehouse *w);
extern void OmCheckWarehouse(const OmWarehouse *w);

/* calendar.c */
extern bool OmIsBusinessDay(const OmCalendar *cal, DateADT day);
extern DateADT OmRollForward(const OmCalendar *cal, DateADT day);
extern DateADT OmAddBusinessDays(const OmCalendar *cal, DateADT day, int n);

/* promise.c */
extern void OmEstimateStarts(OmRefData *ref, const OmService *s, const OmStart *starts,
							 int n, const char *dest, OmEstimate *out);
extern OmService *OmBestService(OmRefData *ref, const OmStart *starts, int n, const char *dest,
								bool has_deadline, DateADT deadline, OmStrategy strategy,
								OmEstimate *best);
extern OmService *OmDefaultService(OmRefData *ref, const OmStart *starts, int n,
								   const char *dest, bool has_deadline, DateADT deadline,
								   OmEstimate *best);
extern void OmEstimateTransit(OmRefData *ref, const OmWarehouse *w, const OmService *s,
							  const char *dest, TimestampTz restart, OmEstimate *e);
extern OmStrategy OmStrategyArg(text *t);
extern Datum OmEstimateDatum(FunctionCallInfo fcinfo, const OmEstimate *e, int natts,
							 Datum *extra, bool *extra_nulls, bool known);

#endif							/* OM_PROMISE_H */
